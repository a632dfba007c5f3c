"""The LeRobot column of bench/policy_latency.py without LeRobot (docs/policy.md, "The LeRobot
column"): the column is skipped, with the reason, when no LeRobot interpreter is usable; the JSON
lines protocol of bench/_lerobot_column.py against a fake child; the stand-in directories LeRobot
builds from. CI never needs the LeRobot venv.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
import textwrap

import pytest

BENCH = Path(__file__).resolve().parents[2] / 'bench'
sys.path.insert(0, str(BENCH))

import _lerobot_column as column  # noqa: E402
import policy_latency  # noqa: E402


def test_no_interpreter_names_the_flag_the_variable_and_the_install() -> None:
    with pytest.raises(column.LeRobotUnavailable) as info:
        column.resolve_python(None, environ={})
    message = str(info.value)
    assert '--lerobot-python' in message and column.ENV_VAR in message
    assert "lerobot[smolvla]==0.6.1" in message and '3.12' in message


def test_the_flag_wins_over_the_variable() -> None:
    env = {column.ENV_VAR: '/from/env/python'}
    assert column.resolve_python('/from/flag/python', env) == ('/from/flag/python',
                                                               '--lerobot-python')
    assert column.resolve_python(None, env) == ('/from/env/python', f'${column.ENV_VAR}')


def test_probe_rejects_a_missing_interpreter(tmp_path: Path) -> None:
    with pytest.raises(column.LeRobotUnavailable, match='does not exist'):
        column.probe(str(tmp_path / 'no_python'))


def test_probe_rejects_an_interpreter_without_lerobot() -> None:
    # This venv: Python 3.11 (too old for lerobot 0.6.1) or, on a newer one, no lerobot.
    with pytest.raises(column.LeRobotUnavailable, match=r'Python 3\.\d+|has no lerobot'):
        column.probe(sys.executable)


def test_the_bench_skips_the_column_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(column.ENV_VAR, raising=False)
    args = argparse.Namespace(lerobot_python=None, no_lerobot=False)
    info, note = policy_latency.lerobot_column(args)
    assert info is None and column.ENV_VAR in note
    args = argparse.Namespace(lerobot_python=None, no_lerobot=True)
    assert policy_latency.lerobot_column(args) == (None, 'turned off by --no-lerobot')


def test_an_unusable_lerobot_python_flag_is_an_error(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    # Checked before anything is built: returns at once.
    assert policy_latency.main(['--lerobot-python', str(tmp_path / 'none'),
                                '--out', str(tmp_path / 'out.json')]) == 2
    assert 'does not exist' in capsys.readouterr().err
    assert not (tmp_path / 'out.json').exists()


@pytest.mark.parametrize('line, expected', [
    ('{"ms": 12.5, "shape": [1, 50, 6]}', {'ms': 12.5, 'shape': [1, 50, 6]}),
    ('{"ready": true}\n', {'ready': True}),
])
def test_replies_parse(line: str, expected: dict) -> None:
    assert column.parse_reply(line) == expected


@pytest.mark.parametrize('line, match', [
    ('{"error": "RuntimeError: boom"}', 'boom'),
    ('Reducing the number of VLM layers to 16 ...', 'not JSON'),
    ('[1, 2]', 'not an object'),
])
def test_bad_replies_raise(line: str, match: str) -> None:
    with pytest.raises(column.LeRobotError, match=match):
        column.parse_reply(line)


FAKE_CHILD = textwrap.dedent('''
    import json, sys
    spec = json.loads(sys.argv[1])
    if spec.get('die'):
        sys.exit(3)
    print(json.dumps({'ready': True, 'params': 7, 'spec': spec}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)['cmd']
        if cmd == 'quit':
            print(json.dumps({'bye': True}), flush=True)
            break
        reply = {'ms': 1.5} if cmd == 'chunk' else {'error': f'unknown command {cmd!r}'}
        print(json.dumps(reply), flush=True)
''')


def test_the_peer_speaks_json_lines(tmp_path: Path) -> None:
    script = tmp_path / 'fake_child.py'
    script.write_text(FAKE_CHILD)
    with column.LeRobotPeer(sys.executable, {'threads': 2}, script=script) as peer:
        assert peer.ready['params'] == 7 and peer.ready['spec'] == {'threads': 2}
        assert peer.request('chunk') == {'ms': 1.5}
        with pytest.raises(column.LeRobotError, match="unknown command 'nope'"):
            peer.request('nope')
        assert peer.request('chunk') == {'ms': 1.5}  # an error reply leaves the child serving
    assert peer.proc.returncode == 0


def test_a_child_that_dies_is_an_error(tmp_path: Path) -> None:
    script = tmp_path / 'fake_child.py'
    script.write_text(FAKE_CHILD)
    with pytest.raises(column.LeRobotError, match=r'exited \(code 3\)'):
        column.LeRobotPeer(sys.executable, {'die': True}, script=script)


def test_the_standin_holds_our_geometry_and_a_tokenizer(tmp_path: Path) -> None:
    from smolvla_ros.policy import SmolVLAConfig

    config = SmolVLAConfig.preset('tiny')
    policy_dir = column.write_standin(config, tmp_path)
    vlm = tmp_path / 'vlm'
    assert sorted(p.name for p in vlm.iterdir()) == sorted(
        ['config.json', *column.STANDIN_FILES])
    written = json.loads((policy_dir / 'config.json').read_text())
    assert written['type'] == 'smolvla'
    assert written['vlm_model_name'] == str(vlm) and written['load_vlm_weights'] is False
    assert written['num_vlm_layers'] == config.num_vlm_layers
    vlm_config = json.loads((vlm / 'config.json').read_text())
    expected = config.vlm_config()
    assert vlm_config['model_type'] == 'smolvlm'
    assert vlm_config['text_config']['hidden_size'] == expected.text_config.hidden_size
    assert vlm_config['vision_config']['image_size'] == expected.vision_config.image_size


def test_paired_speedup_is_the_median_of_same_round_ratios() -> None:
    lerobot = [5000.0, 50000.0, 6000.0]  # round 2 ran under a burst of load, for both
    ours = [2500.0, 20000.0, 2000.0]
    assert policy_latency.paired_speedup(lerobot, ours) == 2.5
    assert policy_latency.paired_speedup(lerobot, [34000.0]) is None  # one chunk: no pairs
    assert policy_latency.paired_speedup(lerobot, []) is None
