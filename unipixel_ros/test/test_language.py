"""Command parsing: carriers, stop/describe, and readable errors for unusable input."""
import pytest

from unipixel_ros.language import CommandAction, CommandError, parse_command


@pytest.mark.parametrize('text,action,expression', [
    ('pick up the red cup', CommandAction.PICK, 'the red cup'),
    ('Could you grab the ball?', CommandAction.PICK, 'the ball'),
    ('hand me the small box please', CommandAction.PICK, 'the small box'),
    ('please get the green box behind the ball', CommandAction.PICK, 'the green box behind the ball'),
    ('Hey robot, can you pick up the cup on the left.', CommandAction.PICK, 'the cup on the left'),
    ('show me the bowl', CommandAction.FIND, 'the bowl'),
    ('find the leftmost ball', CommandAction.FIND, 'the leftmost ball'),
    ('track the can', CommandAction.TRACK, 'the can'),
    ('the blue bottle', CommandAction.FIND, 'the blue bottle'),
    ('grab red cup', CommandAction.PICK, 'the red cup'),
    ('stop', CommandAction.STOP, ''),
    ('Cancel that', CommandAction.STOP, ''),
    ("what's this?", CommandAction.DESCRIBE, ''),
    ('what is that', CommandAction.DESCRIBE, ''),
])
def test_parse(text, action, expression):
    cmd = parse_command(text)
    assert (cmd.action, cmd.expression) == (action, expression)


@pytest.mark.parametrize('text,match', [
    ('', 'empty'),
    ('   \t ', 'empty'),
    ('?!', 'empty'),
    ('x' * 1_000_000, 'limit is'),
    ('pick up the \x00red\x07 cup', 'control character'),
    ('pick up', 'no object named'),
    (None, 'must be text'),
])
def test_unusable_input_is_a_clear_error(text, match):
    with pytest.raises(CommandError, match=match):
        parse_command(text)


def test_config_files_resolve_without_a_ros_environment(monkeypatch):
    from unipixel_ros.paths import config_file
    monkeypatch.delenv('AMENT_PREFIX_PATH', raising=False)
    assert config_file('unipixel.yaml').is_file()
    assert config_file('fastdds_large_messages.xml').is_file()


@pytest.mark.parametrize('text, said', [
    ('pick up the small red cup left of the blue bowl', ('cup', 'red', 'small')),
    ('the medium-sized green box', ('box', 'green', 'medium')),
    ('the orange ball right of the large bottle', ('ball', 'orange', None)),   # anchor's size
    ('the biggest blue bottle', ('bottle', 'blue', None)),
    ('could you grab the red one', (None, 'red', None)),
    ('can you hand me the cans on the left', ('can', None, None)),            # verb vs noun
    ('the mug', (None, None, None)),                                           # not our word
    ('the red', (None, None, None)),                                           # no noun
])
def test_target_mentions_reads_the_first_noun_phrase(text, said):
    from unipixel_ros.language.mentions import target_mentions
    got = target_mentions(text)
    assert (got['category'], got['color'], got['size']) == said


def test_canonical_text_maps_known_words_into_the_models_vocabulary():
    from unipixel_ros.dataset.vocab import CATEGORIES, COLORS, SIZES
    from unipixel_ros.language.canonical import canonical_text

    def canon(text):
        return canonical_text(text, CATEGORIES, COLORS)

    assert canon('Grab the navy tin left of the huge scarlet mug') == \
        'grab the blue can left of the huge red cup'                 # size words stay
    assert canon('the sky blue flask') == 'the blue bottle'          # two-word colour names
    assert canon('the bulkiest carton') == 'the bulkiest box'
    assert canon('the soda bottle') == 'the soda bottle'              # a noun as a modifier
    assert canon('the gray box') == 'the gray box'                    # no grey in the model
    assert canon('the teal widget') == 'the blue widget'              # unknown nouns stay
    # the model's own words come back unchanged
    for size in SIZES:
        for color in COLORS:
            for category in CATEGORIES:
                text = f'pick up the {size} {color} {category} left of the {CATEGORIES[0]}'
                assert canon(text) == text


def test_the_predictor_encodes_the_canonical_words_unless_told_not_to():
    import numpy as np

    from unipixel_ros.inference.predictor import ReferringPredictor
    from unipixel_ros.inference.settings import DecisionSettings

    class _Engine:
        metadata: dict = {}

        def __init__(self):
            self.read = []

        def encode_text(self, text):
            self.read.append(text)
            return np.zeros((1, 2, 4), np.float32), np.ones((1, 2), np.float32)

    engine = _Engine()
    predictor = ReferringPredictor(engine)
    query = predictor.encode_text('the navy tin')
    assert query.text == 'the navy tin' and query.model_text == 'the blue can'
    assert query.mentions['category'] == 'can' and query.mentions['color'] == 'blue'
    predictor.encode_text('the navy tin')                     # cached: not encoded again
    predictor.settings = DecisionSettings(canonical_words=False)
    assert predictor.encode_text('the navy tin').model_text == 'the navy tin'
    assert engine.read == ['the blue can', 'the navy tin']
