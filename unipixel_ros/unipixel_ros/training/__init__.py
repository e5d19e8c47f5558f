"""Training and offline evaluation of the model: data caches, losses, the trainers
(``train``, ``object_training``, ``selection_training``), metric attribute fitting, and the
dataset evaluation (``evaluation``, RefCOCO-style metrics). Never imported at run time."""
