"""Held-out natural commands, written before the grammar in ``language/grammar.py`` existed.

These are not used to tune the grammar: the first run against it is reported as the held-out
score. Each row is ``(utterance, action name, expression)``; action ``'error'`` means the
utterance must raise ``CommandError``; STOP and DESCRIBE have an empty expression.
"""

HELD_OUT = [
    ('yo robot grab me that green bottle', 'pick', 'that green bottle'),
    ('could you please fetch the blue ball for me', 'pick', 'the blue ball'),
    ("where's the yellow box", 'find', 'the yellow box'),
    ('WHERE IS THE RED BALL', 'find', 'the red ball'),
    ('um can you uh pick up the small cup', 'pick', 'the small cup'),
    ('i would like the orange bottle please', 'pick', 'the orange bottle'),
    ('pass me the can next to the box', 'pick', 'the can next to the box'),
    ('is there a pink block', 'find', 'a pink block'),
    ('do you see any bowls', 'find', 'any bowls'),
    ('keep an eye on the white ball', 'track', 'the white ball'),
    ('follow the black can please', 'track', 'the black can'),
    ('hey robot stop', 'stop', ''),
    ('ok robot never mind', 'stop', ''),
    ('wait', 'stop', ''),
    ('pick it up', 'error', ''),
    ('grab the can', 'pick', 'the can'),
    ('can you grab the can', 'pick', 'the can'),
    ('the the red cup', 'find', 'the red cup'),
    ('pick pick up the bowl', 'pick', 'the bowl'),
    ('push the red cup', 'find', 'the red cup'),
    ('i want the biggest bottle', 'pick', 'the biggest bottle'),
    ('can i have the cup closest to the camera', 'pick', 'the cup closest to the camera'),
    ('bring me the green block over here', 'pick', 'the green block'),
    ('hand the yellow cup to me', 'pick', 'the yellow cup'),
    ('please show me where the blue box is', 'find', 'the blue box'),
    ('look for the purple ball on the left', 'find', 'the purple ball on the left'),
    ('could you pick the ball on the right up for me', 'pick', 'the ball on the right'),
    ('grab the bowl behind the can thanks robot', 'pick', 'the bowl behind the can'),
    ('Pick up the cup upside down', 'pick', 'the cup upside down'),
    ('go and get the largest box', 'pick', 'the largest box'),
    ("what's that", 'describe', ''),
    ('tell me what this is', 'describe', ''),
    ("I'm looking for the tiny red block", 'find', 'the tiny red block'),
    ('let me have the ball in front of the bowl', 'pick', 'the ball in front of the bowl'),
    ('hold on to the red cup', 'pick', 'the red cup'),
]
