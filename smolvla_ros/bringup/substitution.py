"""``$(...)`` substitutions inside profile strings, applied identically by ``up`` and ``launch``.

The syntax is the one of ROS 2 launch XML/YAML files, so users already know it:

- ``$(arg NAME)``: the value of the profile argument NAME (declared under ``arguments:``);
- ``$(env NAME)`` / ``$(env NAME DEFAULT)``: an environment variable of the process doing the
  bringup; without DEFAULT an unset variable is an error;
- ``$(dirname)``: the directory that holds the profile file.

Anything else starting with ``$(`` is an error, so a typo never passes through silently. Nothing is
nested and there is no escape: ``$(`` always starts a substitution.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
import re

from smolvla_ros.bringup.errors import SubstitutionError

_OPEN = '$('
_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
KINDS = ('arg', 'env', 'dirname')


@dataclass(frozen=True)
class Substitution:
    """One parsed ``$(kind args...)`` occurrence."""

    kind: str
    args: tuple[str, ...]
    start: int
    end: int  # index one past the closing parenthesis


@dataclass(frozen=True)
class SubstitutionContext:
    """What substitutions resolve against: argument values, the profile directory, the env."""

    arguments: Mapping[str, str]
    dirname: str
    environ: Mapping[str, str]


def parse(text: str, where: str) -> list[Substitution]:
    """Parse every substitution in ``text``; raise :class:`SubstitutionError` on a malformed one.

    ``where`` names the file, entry and key for the error message.
    """
    found: list[Substitution] = []
    for start, end, body in _scan(text, where):
        parts = body.split()
        if not parts:
            raise SubstitutionError(f'{where}: empty substitution "$()" in {text!r}')
        kind, args = parts[0], tuple(parts[1:])
        if kind not in KINDS:
            raise SubstitutionError(
                f'{where}: unknown substitution "$({body})" in {text!r} '
                f'(supported: $(arg NAME), $(env NAME [DEFAULT]), $(dirname))')
        expected = {'arg': (1, 1), 'env': (1, 2), 'dirname': (0, 0)}[kind]
        if not expected[0] <= len(args) <= expected[1]:
            raise SubstitutionError(f'{where}: wrong number of words in "$({body})" in {text!r}')
        if args and not _NAME.match(args[0]):
            raise SubstitutionError(f'{where}: invalid name {args[0]!r} in "$({body})"')
        found.append(Substitution(kind, args, start, end))
    return found


def has_substitution(text: str) -> bool:
    """Whether ``text`` contains ``$(`` (and so is not a plain literal)."""
    return _OPEN in text


def check(text: str, declared: Mapping[str, object] | set[str], where: str) -> None:
    """Validate ``text`` at load time: well-formed, each ``$(arg X)`` a declared argument."""
    for sub in parse(text, where):
        if sub.kind == 'arg' and sub.args[0] not in declared:
            names = ', '.join(sorted(declared)) or '(none)'
            raise SubstitutionError(
                f'{where}: "$(arg {sub.args[0]})" refers to an undeclared argument '
                f'(declared arguments: {names})')


def substitute(text: str, context: SubstitutionContext, where: str) -> str:
    """Return ``text`` with every substitution replaced by its value."""
    pieces: list[str] = []
    position = 0
    for sub in parse(text, where):
        pieces.append(text[position:sub.start])
        pieces.append(_value(sub, context, where))
        position = sub.end
    pieces.append(text[position:])
    return ''.join(pieces)


def _value(sub: Substitution, context: SubstitutionContext, where: str) -> str:
    if sub.kind == 'dirname':
        return context.dirname
    name = sub.args[0]
    if sub.kind == 'arg':
        if name not in context.arguments:
            raise SubstitutionError(f'{where}: no value for argument {name!r}')
        return context.arguments[name]
    if name in context.environ:
        return context.environ[name]
    if len(sub.args) == 2:
        return sub.args[1]
    raise SubstitutionError(
        f'{where}: environment variable {name!r} is not set and "$(env {name})" has no default')


def _scan(text: str, where: str) -> Iterator[tuple[int, int, str]]:
    position = 0
    while (start := text.find(_OPEN, position)) >= 0:
        close = text.find(')', start + len(_OPEN))
        if close < 0:
            raise SubstitutionError(f'{where}: unterminated "$(" in {text!r}')
        body = text[start + len(_OPEN):close]
        if _OPEN in body:
            raise SubstitutionError(f'{where}: nested "$(" in {text!r} (not supported)')
        yield start, close + 1, body.strip()
        position = close + 1
