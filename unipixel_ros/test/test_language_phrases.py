"""The parser against its phrase table (``language_phrases``) and the held-out commands."""
import time

import pytest
from language_heldout import HELD_OUT, HELD_OUT_2
from language_phrases import EXPRESSIONS, HAND_WRITTEN, PHRASES, STYLES, styled_rows

from unipixel_ros.language import Command, CommandAction, CommandError, parse_command
from unipixel_ros.language.mentions import target_mentions


def _parse(text):
    try:
        cmd = parse_command(text)
    except CommandError:
        return 'error', ''
    return cmd.action.value, cmd.expression


def test_the_table_is_big_and_varied():
    assert len(PHRASES) >= 300
    assert len(HAND_WRITTEN) >= 40
    assert len({text for text, _, _ in PHRASES}) == len(PHRASES)      # no duplicate rows
    assert {action for _, action, _ in PHRASES} == {'pick', 'find', 'track', 'stop', 'describe',
                                                    'error'}
    styles = [name for name, _ in styled_rows()]
    assert all(styles.count(name) >= 20 for name, _ in STYLES)


@pytest.mark.parametrize('text,action,expression', PHRASES)
def test_phrase_table(text, action, expression):
    assert _parse(text) == (action, expression)


@pytest.mark.parametrize('text,action,expression', HELD_OUT + HELD_OUT_2)
def test_held_out(text, action, expression):
    assert _parse(text) == (action, expression)


@pytest.mark.parametrize('expression', EXPRESSIONS)
def test_a_parsed_expression_parses_to_itself(expression):
    """The node may hand an expression back to the parser (a service query): nothing is lost."""
    assert _parse(expression) == ('find', expression)


@pytest.mark.parametrize('text,action,expression',
                         [row for row in PHRASES if row[1] in ('pick', 'find', 'track')])
def test_mentions_read_the_same_target_from_the_utterance_and_the_expression(
        text, action, expression):
    assert target_mentions(text) == target_mentions(expression)


def test_no_object_errors_say_what_is_missing():
    with pytest.raises(CommandError, match="no object named in 'grab it': 'it' does not say"):
        parse_command('grab it')
    with pytest.raises(CommandError, match="'that one' does not say which object"):
        parse_command('that one')


def test_stop_and_describe_have_no_expression():
    assert parse_command('Hold on!') == Command(CommandAction.STOP, '', 'hold on')
    assert parse_command('What is this?') == Command(CommandAction.DESCRIBE, '', 'what is this')


def test_parse_time_per_command():
    """Median over the table under 1 ms, loose for a loaded machine (a parse takes ~40 us)."""
    times = []
    for text, _, _ in PHRASES:
        start = time.perf_counter()
        _parse(text)
        times.append(time.perf_counter() - start)
    times.sort()
    assert times[len(times) // 2] < 1e-3
