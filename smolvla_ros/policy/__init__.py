"""SmolVLA in PyTorch (the only robot-stack package besides training that may import torch).

`SmolVLAPolicy` and `SmolVLAConfig` are imported lazily, so that `import smolvla_ros.policy` (e.g.
to read a constant) does not pull in torch and transformers.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    'SmolVLAPolicy': 'smolvla_ros.policy.policy',
    'SmolVLAConfig': 'smolvla_ros.policy.configuration_smolvla',
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
