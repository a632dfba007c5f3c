"""smolvla_training: offline data and training tools (ament_python, never imports rclpy).

Dependencies live in package.xml (rosdep) and ../requirements/*.txt (pip), not here.
"""
from setuptools import find_packages, setup

PACKAGE = 'smolvla_training'

CLIS: dict[str, str] = {
    'smolvla-convert': 'smolvla_training.convert.cli:main',
    'smolvla-train': 'smolvla_training.train.cli:main',
    # `ros2 run smolvla_training train` after a colcon build (lib/smolvla_training/train).
    'train': 'smolvla_training.train.cli:main',
}

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(include=[PACKAGE, f'{PACKAGE}.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
    ],
    zip_safe=True,
    maintainer='smolvla_ros developers',
    maintainer_email='dev@smolvla-ros.local',
    description='rosbag2 -> LeRobot dataset conversion and SmolVLA training for smolvla_ros.',
    license='Apache-2.0',
    python_requires='>=3.10',
    entry_points={'console_scripts': [f'{k} = {v}' for k, v in CLIS.items()]},
)
