"""language.concepts: concepts and constraints of hand-written referring expressions."""
import pytest

from unipixel_ros.language.concepts import parse_referring


def _summary(text):
    r = parse_referring(text)
    return (r.target.noun, r.target.category, r.target.color, r.target.size,
            [(c.kind, c.value, c.anchor and c.anchor.words(), c.index) for c in r.constraints])


@pytest.mark.parametrize('text, expected', [
    ('pick up the red cup left of the blue bowl',
     ('cup', 'cup', 'red', None, [('relation', 'left_of', 'blue bowl', 0)])),
    ('the mug closest to you', ('mug', 'cup', None, None, [('position', 'near', None, 0)])),
    ('the cup closest to the bowl',
     ('cup', 'cup', None, None, [('relation', 'closest_to', 'bowl', 0)])),
    ('the second cup from the left', ('cup', 'cup', None, None, [('ordinal', 'left', None, 2)])),
    ('the large navy mug on the right side of the sky blue tin',
     ('mug', 'cup', 'navy', 'large', [('relation', 'right_of', 'sky blue tin', 0)])),
    ('the box that is the biggest', ('box', 'box', None, None, [('superlative', 'biggest', None, 0)])),
    ('the most distant ball', ('ball', 'ball', None, None, [('position', 'far', None, 0)])),
    ('the red one', (None, None, 'red', None, [])),
    ('the orange can', ('can', 'can', 'orange', None, [])),
    ("I'd like the littlest cube", ('cube', 'block', None, None, [('superlative', 'smallest', None, 0)])),
    ('the cup in the middle', ('cup', 'cup', None, None, [('position', 'middle', None, 0)])),
    ('the left cup', ('cup', 'cup', None, None, [('position', 'left', None, 0)])),
    ('the tallest bottle', ('bottle', 'bottle', None, None, [('superlative', 'tallest', None, 0)])),
    ('the gray box in front of the medium-sized can',
     ('box', 'box', 'grey', None, [('relation', 'in_front_of', 'medium can', 0)])),
])
def test_hand_written(text, expected):
    assert _summary(text) == expected


def test_concepts_are_distinct_phrases():
    r = parse_referring('the cup next to the cup')
    assert [c.phrase for c in r.concepts()] == ['cup']
    r = parse_referring('the mug beside the bowl')
    assert [c.phrase for c in r.concepts()] == ['mug', 'bowl']
