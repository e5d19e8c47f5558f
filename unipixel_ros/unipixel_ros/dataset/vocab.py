"""Vocabularies shared by the scene generator, the dataset files and the model's attribute heads.

The order of each tuple defines the class index used in samples (``category``, ``color``,
``size``); append new names at the end so that existing indices keep their meaning.
"""

#: Object categories.
CATEGORIES = ('cup', 'bowl', 'box', 'ball', 'bottle', 'can', 'block')
#: Colour names (the simulator owns the RGB values).
COLORS = ('red', 'green', 'blue', 'yellow', 'orange', 'purple', 'white', 'black', 'pink')
#: Size names, smallest first.
SIZES = ('small', 'medium', 'large')
#: Expression types; ``command`` wraps one of the others (kept as ``inner_type``).
EXPRESSION_TYPES = ('attribute', 'position', 'relation', 'superlative', 'command', 'absent')
