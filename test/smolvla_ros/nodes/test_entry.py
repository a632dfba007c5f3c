"""The nodes' console-script entry (nodes/entry.py): a stop while a node is still importing."""
from __future__ import annotations

import ast
from pathlib import Path
import signal
import subprocess
import sys
import textwrap

from waiting import wait_until

from smolvla_ros.nodes import entry

ROOT = Path(__file__).resolve().parents[3]


def _setup_nodes() -> dict[str, str]:
    tree = ast.parse((ROOT / 'setup.py').read_text())
    return next(ast.literal_eval(node.value) for node in ast.walk(tree)
                if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == 'NODES')


def test_every_node_script_goes_through_entry_to_its_module_main() -> None:
    nodes = _setup_nodes()
    assert nodes, 'setup.py lists no nodes'
    for name, target in nodes.items():
        assert target == f'smolvla_ros.nodes.entry:{name}', (name, target)
        assert callable(getattr(entry, name)), name
        assert (ROOT / 'smolvla_ros' / 'nodes' / f'{name}.py').is_file(), name


def test_ctrl_c_during_the_import_ends_quietly_with_130(tmp_path: Path) -> None:
    # A node module whose import takes long (rclpy, MuJoCo or torch on a loaded machine).
    (tmp_path / 'slow_node.py').write_text(textwrap.dedent(f'''
        import pathlib, time
        pathlib.Path({str(tmp_path / 'importing')!r}).touch()
        time.sleep(60)
        def main():
            return 0
        '''))
    code = (f'import sys; sys.path.insert(0, {str(tmp_path)!r}); '
            'from smolvla_ros.nodes.entry import run; sys.exit(run("slow_node"))')
    proc = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until((tmp_path / 'importing').exists, 30), proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == entry.EXIT_INTERRUPTED, err
    assert 'Traceback' not in err and 'KeyboardInterrupt' not in err, err
    assert 'slow_node: stopped while starting' in err


def test_a_node_module_that_imports_runs_its_main(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / 'quick_node.py').write_text('def main():\n    return 7\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    assert entry.run('quick_node') == 7
