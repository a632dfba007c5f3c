"""$(arg), $(env) and $(dirname) substitutions: values, and one specific error per mistake."""
from __future__ import annotations

import pytest

from smolvla_ros.bringup.errors import SubstitutionError
from smolvla_ros.bringup.substitution import (
    SubstitutionContext,
    check,
    has_substitution,
    substitute,
)

CONTEXT = SubstitutionContext(arguments={'count': '20', 'ns': 'so101', 'empty': ''},
                              dirname='/profiles', environ={'HOME': '/home/me'})


@pytest.mark.parametrize(('text', 'expected'), [
    ('plain', 'plain'),
    ('$(arg count)', '20'),
    ('/$(arg ns)/cameras/$(arg ns)', '/so101/cameras/so101'),
    ('x$(arg empty)y', 'xy'),
    ('$( arg   count )', '20'),
    ('$(env HOME)/data', '/home/me/data'),
    ('$(env UNSET_VAR fallback)', 'fallback'),
    ('$(env HOME fallback)', '/home/me'),
    ('$(dirname)/params.yaml', '/profiles/params.yaml'),
    ('cost $5 (not a substitution)', 'cost $5 (not a substitution)'),
])
def test_substitute_values(text: str, expected: str) -> None:
    assert substitute(text, CONTEXT, 'where') == expected


@pytest.mark.parametrize(('text', 'fragment'), [
    ('$(arg count', 'unterminated'),
    ('$()', 'empty substitution'),
    ('$(var count)', 'unknown substitution "$(var count)"'),
    ('$(arg)', 'wrong number of words'),
    ('$(arg a b)', 'wrong number of words'),
    ('$(dirname x)', 'wrong number of words'),
    ('$(arg 1x)', "invalid name '1x'"),
    ('$(arg $(arg count))', 'nested'),
    ('$(env UNSET_VAR)', "'UNSET_VAR' is not set"),
    ('$(arg missing)', "no value for argument 'missing'"),
])
def test_substitute_errors_are_specific(text: str, fragment: str) -> None:
    with pytest.raises(SubstitutionError) as info:
        substitute(text, CONTEXT, 'file.yaml: node x')
    assert str(info.value).startswith('file.yaml: node x: ')
    assert fragment in str(info.value)


def test_check_rejects_undeclared_arguments_and_lists_declared_ones() -> None:
    check('$(arg count) $(env X) $(dirname)', {'count'}, 'w')
    with pytest.raises(SubstitutionError, match=r'undeclared argument \(declared arguments: a, b'):
        check('$(arg c)', {'b', 'a'}, 'w')


def test_has_substitution() -> None:
    assert has_substitution('a$(arg b)')
    assert not has_substitution('a $ (b)')
