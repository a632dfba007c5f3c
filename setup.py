"""smolvla_ros: the ament_python package at the repository root.

Dependencies are not listed here: on a ROS install rosdep resolves package.xml, and the Python-only
extras come from requirements/*.txt (the Makefile installs both on the pip-only path). Listing them
twice is how they drift apart.
"""
from glob import glob
import os

from setuptools import find_packages, setup

PACKAGE = 'smolvla_ros'

# ros2 run smolvla_ros NAME  ==  console script NAME on the pip-only path (docs/ARCHITECTURE.md,
# "Install paths and dependencies").
NODES = {
    # Diagnostics: a PredictChunk server without inference, a client measuring the round trip.
    'null_policy_server': 'smolvla_ros.nodes.entry:null_policy_server',
    'predict_probe': 'smolvla_ros.nodes.entry:predict_probe',
    'feetech_driver': 'smolvla_ros.nodes.entry:feetech_driver',
    'teleop': 'smolvla_ros.nodes.entry:teleop',
    'camera': 'smolvla_ros.nodes.entry:camera',
    'chunk_executor': 'smolvla_ros.nodes.entry:chunk_executor',
    'policy_server': 'smolvla_ros.nodes.entry:policy_server',
    'so101_sim': 'smolvla_ros.nodes.entry:so101_sim',
    'chunk_visualizer': 'smolvla_ros.nodes.entry:chunk_visualizer',
    'oracle_policy_server': 'smolvla_ros.nodes.entry:oracle_policy_server',
    'recorder': 'smolvla_ros.nodes.entry:recorder',
}
CLIS = {
    'smolvla-ros': 'smolvla_ros.cli.main:main',
}


def _tree(pattern: str) -> list[str]:
    return sorted(p for p in glob(pattern, recursive=True) if not p.endswith('/'))


def _folders(root: str) -> list[tuple[str, list[str]]]:
    """(share destination, files) for every folder under ``root`` that holds files: data_files
    installs files flat into one destination, so a nested tree needs one entry per folder."""
    entries = []
    for folder, _dirs, files in sorted(os.walk(root)):
        if files:
            entries.append((f'share/{PACKAGE}/{folder}',
                            sorted(os.path.join(folder, f) for f in files)))
    return entries


setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(include=[PACKAGE, f'{PACKAGE}.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', _tree('launch/*.py')),
        (f'share/{PACKAGE}/config/profiles', _tree('config/profiles/*.yaml')),
        (f'share/{PACKAGE}/config/contracts', _tree('config/contracts/*.yaml')),
        (f'share/{PACKAGE}/config/params', _tree('config/params/*.yaml')),
        (f'share/{PACKAGE}/config/calibration', _tree('config/calibration/*.json')),
        (f'share/{PACKAGE}/config/rviz', _tree('config/rviz/*.rviz')),
        (f'share/{PACKAGE}/urdf', _tree('urdf/*')),
        # The shipped SmolVLA checkpoints (LeRobot layout, tokenizer/ included): paths.py
        *_folders('policies'),
    ],
    zip_safe=True,
    maintainer='smolvla_ros developers',
    maintainer_email='dev@smolvla-ros.local',
    description='SmolVLA on SO-100/SO-101 arms with asynchronous inference over ROS 2.',
    license='Apache-2.0',
    python_requires='>=3.10',
    entry_points={
        'console_scripts': [f'{k} = {v}' for k, v in {**NODES, **CLIS}.items()],
    },
)
