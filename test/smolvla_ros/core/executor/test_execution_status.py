"""The executor's status line names why it stalls instead of a bare 'starved'."""
from __future__ import annotations

from smolvla_ros.core.executor.execution_status import OK, WARN, StallCauses, execution_status


def _status(**kw) -> tuple[int, str]:
    args = {'started': True, 'paused': False, 'starved': False, 'stale': '', 'cause': ''}
    return execution_status(**{**args, **kw})


def test_starved_names_the_cause_when_known() -> None:
    assert _status(starved=True) == (WARN, 'starved: holding the last command')
    assert _status(starved=True, cause='policy service /predict_chunk not available') == (
        WARN, 'starved: holding the last command (policy service /predict_chunk not available)')
    assert _status(started=False, cause='request 3: policy failed: ImageSizeError') == (
        WARN, 'waiting for a first chunk: request 3: policy failed: ImageSizeError')
    assert _status(started=False) == (OK, 'waiting')
    assert _status() == (OK, 'executing')
    assert _status(paused=True, starved=True, cause='x') == (OK, 'paused (~/pause)')
    assert _status(stale='camera front stale', starved=True) == (WARN, 'camera front stale')
    assert _status(stale="no sample from ['front']", cause='frame refused: 4000x3000') == (
        WARN, "no sample from ['front'] (frame refused: 4000x3000)")


def test_a_cause_is_forgotten_after_its_hold_or_a_chunk() -> None:
    causes = StallCauses(hold_ns=1_000)
    assert causes.current(0) == ''
    causes.note('frames refused', 100)
    assert causes.current(1_100) == 'frames refused'
    assert causes.current(1_101) == ''
    causes.note('request 4: no answer within 5 s', 2_000)
    causes.clear()  # a chunk was accepted
    assert causes.current(2_001) == ''
