"""The parser's phrase table: utterances people say to a robot, with the parse they must give.

``PHRASES`` is a list of ``(utterance, action name, expression)``; action ``'error'`` means the
utterance must raise ``CommandError``, STOP and DESCRIBE rows have an empty expression.

Most rows are built combinatorially: every carrier (``PICK_CARRIERS`` ...) is crossed with a
rotating third of ``EXPRESSIONS`` (so each carrier meets every kind of expression: attribute,
position, relation, superlative, and words that look like fillers: "right", "up", "can"), and
the speech styles (ALL CAPS, hesitations, repeated words, trailing fillers, punctuation) take
turns row by row. ``HAND_WRITTEN`` holds the odd ones, including every case from the bug
report.
"""

#: referring expressions as the model reads them; none may lose a word to the parser
EXPRESSIONS = [
    'the red cup', 'the small blue bottle', 'the medium-sized green box', 'the can',
    'the cans on the left', 'the ball on the right', 'the cup to the left of the bowl',
    'the can next to the box', 'the biggest bottle', 'the cup closest to the camera',
    'the bowl behind the yellow can', 'the block in front of the ball', 'the rightmost cup',
    'the nearest orange ball', 'the cup upside down', 'the purple mug',
    'the box right of the large bottle', 'the ball closest to you', 'the farthest can',
    'the white cup beside the black bowl', 'a pink block', 'the red one',
    'the cup furthest to the right', 'the smallest can on the left', 'the bottle at the back',
    'the tiniest ball', 'the can up on the box', 'the cup on the right of the bowl',
]

PICK_CARRIERS = [
    'pick up {}', 'pick {} up', 'grab {}', 'get me {}', 'go get {}', 'fetch {}', 'bring me {}',
    'bring {} over here', 'give me {}', 'hand me {}', 'pass me {}', 'i need {}', 'i want {}',
    'i would like {}', "I'd like {}", 'can i have {}', 'could you grab {}', 'can you pick {} up',
    'could you please hand {} to me', 'hey robot grab {}', 'would you mind getting {}',
    'i want you to pick up {}', 'go and fetch {}', 'take {}', 'lift {} up', 'hold on to {}',
    'can you get {}', 'gimme {}', 'bring {} to me', 'I really want {}',
]
FIND_CARRIERS = [
    'find {}', 'show me {}', 'where is {}', "where's {}", 'do you see {}', 'can you see {}',
    'is there {}', 'look for {}', 'locate {}', 'point at {}', 'tell me where {} is', '{}',
    "I'm looking for {}", 'push {}', 'can you find {}', 'highlight {}',
]
TRACK_CARRIERS = [
    'track {}', 'follow {}', 'keep an eye on {}', 'keep tracking {}', 'watch {}',
    'could you follow {}',
]


def _caps(utterance: str) -> str:
    return utterance.upper()


def _stutter_expression(carrier: str, expression: str) -> str:
    first, _, rest = expression.partition(' ')
    return carrier.format(f'{first} {first} {rest}')


def _stutter_carrier(carrier: str, expression: str) -> str:
    first, _, rest = carrier.partition(' ')
    return f'{first} {carrier}'.format(expression) if rest else carrier.format(expression)


#: speech styles: (name, function(carrier, expression) -> utterance)
STYLES = [
    ('plain', lambda c, e: c.format(e)),
    ('caps', lambda c, e: _caps(c.format(e))),
    ('um', lambda c, e: 'um ' + c.format(e)),
    ('please', lambda c, e: c.format(e) + ' please'),
    ('for me', lambda c, e: c.format(e) + ' for me'),
    ('thanks', lambda c, e: c.format(e) + ', thanks!'),
    ('stutter expression', _stutter_expression),
    ('punctuated', lambda c, e: 'Robot, ' + c.format(e) + '.'),
    ('stutter carrier', _stutter_carrier),
    ('over here', lambda c, e: c.format(e) + ' over here'),
    ('to me', lambda c, e: c.format(e) + ' to me'),
    ('hey robot', lambda c, e: 'hey robot ' + c.format(e)),
    ('now', lambda c, e: c.format(e) + ' now'),
    ('uh caps please', lambda c, e: _caps('uh ' + c.format(e) + ' please')),
    ('thank you robot', lambda c, e: c.format(e) + ' thank you robot'),
]


def styled_rows() -> list[tuple[str, tuple[str, str, str]]]:
    """(style name, row) for carriers x a rotating third of the expressions."""
    rows = []
    carriers = ([(c, 'pick') for c in PICK_CARRIERS] + [(c, 'find') for c in FIND_CARRIERS]
                + [(c, 'track') for c in TRACK_CARRIERS])
    for ci, (carrier, action) in enumerate(carriers):
        for ei, expression in enumerate(EXPRESSIONS):
            if (ei + ci) % 3:
                continue
            name, style = STYLES[len(rows) % len(STYLES)]
            rows.append((name, (style(carrier, expression), action, expression)))
    return rows


def combinatorial() -> list[tuple[str, str, str]]:
    """The combinatorial rows without their style names."""
    return [row for _, row in styled_rows()]


HAND_WRITTEN = [
    # the bug report, every row
    ('get me the red cup', 'pick', 'the red cup'),
    ('go get the bowl', 'pick', 'the bowl'),
    ('I need the purple mug', 'pick', 'the purple mug'),
    ("I'd like the lime cup", 'pick', 'the lime cup'),
    ('can you pick the pink cup up', 'pick', 'the pink cup'),
    ('bring the can over here', 'pick', 'the can'),
    ('can you see the bowl', 'find', 'the bowl'),
    ('hold on', 'stop', ''),
    ('grab it', 'error', ''),
    # things that are not an object
    ('wait', 'stop', ''),
    ('hang on', 'stop', ''),
    ('wait a second', 'stop', ''),
    ('no', 'stop', ''),
    ('that one', 'error', ''),
    ('pick it up', 'error', ''),
    ('grab that one please', 'error', ''),
    ('take this', 'error', ''),
    ('hey robot', 'error', ''),
    ('please', 'error', ''),
    ('thanks', 'error', ''),
    ('follow me', 'error', ''),
    # STOP / DESCRIBE keep working, with the new fillers around them
    ('stop', 'stop', ''),
    ('STOP!', 'stop', ''),
    ('cancel that', 'stop', ''),
    ('never mind', 'stop', ''),
    ('nevermind', 'stop', ''),
    ('hey robot stop', 'stop', ''),
    ('stop tracking the ball', 'stop', ''),
    ('please stop', 'stop', ''),
    ("don't pick up the red cup", 'stop', ''),
    ('do not grab that', 'stop', ''),
    ('forget it', 'stop', ''),
    ('okay robot cancel', 'stop', ''),
    ("what's this?", 'describe', ''),
    ('what is that', 'describe', ''),
    ('WHAT IS THIS', 'describe', ''),
    ('robot, what do you see', 'describe', ''),
    ('describe this', 'describe', ''),
    ('um what is that thing', 'describe', ''),
    # "wait" / "hold on" before a new command: the command wins
    ('wait, grab the blue one', 'pick', 'the blue one'),
    ('hold on, grab the blue ball instead', 'pick', 'the blue ball'),
    ('no, the green cup', 'find', 'the green cup'),
    # "can" the modal and "can" the category
    ('can you grab the can', 'pick', 'the can'),
    ('grab the can', 'pick', 'the can'),
    ('can', 'find', 'the can'),
    ('can you see the cans', 'find', 'the cans'),
    ('can I have the can on the left', 'pick', 'the can on the left'),
    ('can you just grab the can just left of the bowl', 'pick', 'the can just left of the bowl'),
    # "right", "up", "to me", "over here" inside the description
    ('grab the cup on the right', 'pick', 'the cup on the right'),
    ('get the cup on the right now', 'pick', 'the cup on the right'),
    ('pick up the cup right now', 'pick', 'the cup'),
    ('find the cup upside down', 'find', 'the cup upside down'),
    ('pick up the can up on the box', 'pick', 'the can up on the box'),
    ('find the ball closest to me', 'find', 'the ball closest to me'),
    ('bring me the bowl nearest to me', 'pick', 'the bowl nearest to me'),
    ('hand the cup on the right to me', 'pick', 'the cup on the right'),
    ('the cup over there', 'find', 'the cup over there'),
    ('track the ball over here', 'track', 'the ball'),
    # speech-to-text artefacts
    ('the the red cup', 'find', 'the red cup'),
    ('pick pick up the bowl', 'pick', 'the bowl'),
    ('pick up pick up the green box', 'pick', 'the green box'),
    ('PICK UP THE RED CUP', 'pick', 'the red cup'),
    ('grab the red red cup', 'pick', 'the red cup'),
    ('um uh grab the uh blue ball', 'pick', 'the blue ball'),
    ('get me the red cup please thank you', 'pick', 'the red cup'),
    # requests and questions in other words
    ('I would really like the green cup', 'pick', 'the green cup'),
    ('could I please have the red bowl', 'pick', 'the red bowl'),
    ('let me have the ball in front of the bowl', 'pick', 'the ball in front of the bowl'),
    ('would you mind grabbing the box', 'pick', 'the box'),
    ('hand over the pink cup', 'pick', 'the pink cup'),
    ('pass the yellow ball over', 'pick', 'the yellow ball'),
    ('where did the bowl go', 'find', 'the bowl'),
    ('where are the blue blocks', 'find', 'the blue blocks'),
    ('show me where the blue box is', 'find', 'the blue box'),
    ('is there a cup to the right of the bowl', 'find', 'a cup to the right of the bowl'),
    ('do you see any bowls', 'find', 'any bowls'),
    ('I need you to find the red ball', 'find', 'the red ball'),
    ('keep an eye on the white ball', 'track', 'the white ball'),
    ('go to the bowl', 'find', 'the bowl'),
    # unknown verbs: FIND, without the verb in the query
    ('push the red cup', 'find', 'the red cup'),
    ('nudge the black box', 'find', 'the black box'),
    ('move red cup', 'find', 'the red cup'),
    ("I'm after the green ball", 'pick', 'the green ball'),
    ('squish the orange ball', 'find', 'the orange ball'),
    # bare phrases and object words the vocabulary does not know
    ('red cup', 'find', 'the red cup'),
    ('mug next to the bowl', 'find', 'the mug next to the bowl'),
    ('grab mug on the left', 'pick', 'the mug on the left'),
    ('the bottle that is behind the ball', 'find', 'the bottle that is behind the ball'),
    ('grab red cup', 'pick', 'the red cup'),
]

PHRASES = combinatorial() + HAND_WRITTEN
