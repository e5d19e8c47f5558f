"""Scene seed ranges, so that no evaluation ever sees a training scene.

Training datasets start at 100000 (``sim_train`` 100000, ``sim_train2`` 200000, ...), the test
set at 900000; the closed-loop evaluation uses 700000 onwards, which no dataset uses.
"""

#: First scene seed of the closed-loop evaluation.
CLOSED_LOOP_SEED = 700000
