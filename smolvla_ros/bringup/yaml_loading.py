"""Strict YAML reading for profiles: duplicate keys are errors, not silently last-wins."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from smolvla_ros.bringup.errors import ProfileError


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice (a classic profile typo)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:  # an unhashable key: let the base class report it
            break
        if duplicate:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f'duplicate key {key!r} (line {mark.line + 1})', mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml_file(path: Path, what: str = 'profile') -> Any:
    """Read ``path`` as YAML with duplicate-key detection; errors name the file and the line."""
    try:
        text = path.read_text(encoding='utf-8')
    except FileNotFoundError as exc:
        raise ProfileError(f'{path}: {what} file not found') from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f'{path}: cannot read {what} file: {exc}') from exc
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ProfileError(f'{path}: invalid YAML: {exc}') from exc
