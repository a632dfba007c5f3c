"""The ROS-native path (docs/ARCHITECTURE.md, "House rules"; README): the three packages build with
colcon against a ROS underlay, and the built interfaces import from the colcon install space.

Here the underlay is the venv's ROS 2 wheels (AMENT_PREFIX_PATH/CMAKE_PREFIX_PATH = the venv), the
closest thing to /opt/ros/<distro> this machine has. The command is the one the README documents.
"""
from __future__ import annotations

import os
from pathlib import Path
import shutil
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.prefix)
IGNORED = {'.venv', 'build', 'install', 'log', '.git', 'demo_out', '__pycache__', '.pytest_cache',
           '.ruff_cache', 'results'}

pytestmark = [pytest.mark.slow]


def _copy_source(dst: Path) -> None:
    def ignore(_dir: str, names: list[str]) -> set[str]:
        return {n for n in names if n in IGNORED or n.endswith('.egg-info')}
    shutil.copytree(ROOT, dst, ignore=ignore, symlinks=True)


@pytest.fixture(scope='module')
def colcon_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    colcon = VENV / 'bin' / 'colcon'
    if not colcon.exists():
        pytest.skip('colcon-common-extensions is not installed in this environment')
    ws = tmp_path_factory.mktemp('ws')
    _copy_source(ws / 'src' / 'smolvla_ros')
    env = dict(os.environ, AMENT_PREFIX_PATH=str(VENV), CMAKE_PREFIX_PATH=str(VENV),
               PATH=f'{VENV / "bin"}{os.pathsep}{os.environ["PATH"]}')
    cmd = [str(colcon), 'build',
           '--base-paths', 'src/smolvla_ros', 'src/smolvla_ros/msg', 'src/smolvla_ros/training',
           '--cmake-args', '-DBUILD_TESTING=OFF', f'-DPython3_EXECUTABLE={sys.executable}']
    proc = subprocess.run(cmd, cwd=ws, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert 'Summary: 3 packages finished' in proc.stdout, proc.stdout[-2000:]
    return ws


def test_install_space_layout(colcon_ws: Path) -> None:
    install = colcon_ws / 'install'
    share = install / 'smolvla_ros' / 'share' / 'smolvla_ros'
    assert (share / 'package.xml').is_file()
    assert sorted(p.name for p in (share / 'config' / 'profiles').glob('*.yaml')), 'no profiles'
    # The shipped default policy, every file of it (tokenizer/ is a nested folder).
    source = ROOT / 'policies' / 'so101_sim_lift'
    shipped = sorted(p.relative_to(source) for p in source.rglob('*') if p.is_file())
    installed = share / 'policies' / 'so101_sim_lift'
    assert Path('tokenizer/tokenizer.json') in shipped
    assert [p for p in shipped if not (installed / p).is_file()] == []
    assert (install / 'smolvla_ros' / 'lib' / 'smolvla_ros' / 'smolvla-ros').is_file()
    assert (install / 'smolvla_training' / 'share' / 'smolvla_training' / 'package.xml').is_file()


def test_interfaces_import_from_install_space(colcon_ws: Path) -> None:
    probe = (
        'import smolvla_msgs.msg as m, smolvla_ros, smolvla_training\n'
        'from smolvla_msgs.srv import PredictChunk\n'
        'from ament_index_python.packages import get_package_share_directory as share\n'
        'from smolvla_ros.paths import default_policy_dir, share_dir\n'
        'req = PredictChunk.Request(); req.observation.camera_names = ["front"]\n'
        'chunk = m.ActionChunk(num_steps=2, positions=[0.0] * 12)\n'
        'print(m.__file__); print(smolvla_ros.__file__); print(smolvla_training.__file__)\n'
        'print(share("smolvla_ros")); print(share_dir()); print(default_policy_dir())\n'
    )
    # A clean environment: only what install/setup.bash sets, as a user's shell would have it.
    cmd = f'source install/setup.bash && exec {sys.executable} -c \'{probe}\''
    proc = subprocess.run(['bash', '-c', cmd], cwd=colcon_ws, capture_output=True, text=True,
                          env={'PATH': '/usr/bin:/bin', 'HOME': os.environ.get('HOME', '/tmp')},
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    install = str(colcon_ws / 'install')
    assert all(line.startswith(install) for line in lines), lines
    assert lines[3] == lines[4], 'share_dir() must resolve to the ament share directory'
    assert lines[5] == f'{lines[3]}/policies/so101_sim_lift', 'the default policy is not installed'


def test_ros2_run_smolvla_training_train_help(colcon_ws: Path) -> None:
    """`ros2 run smolvla_training train` runs lib/smolvla_training/train; call it the same way."""
    exe = colcon_ws / 'install' / 'smolvla_training' / 'lib' / 'smolvla_training' / 'train'
    assert exe.is_file(), 'colcon did not install the train console script'
    proc = subprocess.run(['bash', '-c', f'source install/setup.bash && exec {exe} --help'],
                          cwd=colcon_ws, capture_output=True, text=True, timeout=120,
                          env={'PATH': f'{Path(sys.executable).parent}:/usr/bin:/bin',
                               'HOME': os.environ.get('HOME', '/tmp')})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'smolvla-train' in proc.stdout and '--dataset' in proc.stdout
