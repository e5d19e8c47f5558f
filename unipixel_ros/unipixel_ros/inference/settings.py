"""Decision settings: how the network's outputs become found / not found.

One dataclass, built by the CLI (``add_decision_arguments`` -> :meth:`DecisionSettings.from_args`)
and by ``unipixel_node`` (its parameters), read by :class:`~.predictor.ReferringPredictor`.
The defaults are the shipped model's, chosen on the val split (weights/MODEL_CARD.md).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

VERIFIABLE_ATTRIBUTES = ('category', 'color', 'size')
#: where a described object's colour word comes from (``DecisionSettings.describe_color``)
DESCRIBE_COLOR_SOURCES = ('measured', 'network')


def parse_attribute_list(value: str) -> tuple:
    """'category,color' -> ('category', 'color'); 'none' or '' -> () (the CLI / parameter form
    of ``verify_attributes``; names are checked by :class:`DecisionSettings`)."""
    if value.strip().lower() in ('', 'none'):
        return ()
    return tuple(a.strip() for a in value.split(',') if a.strip())


@dataclass(frozen=True)
class DecisionSettings:
    """Thresholds and checks that turn network outputs into an answer.

    Attributes:
        exists_threshold: minimum target-exists probability in [0, 1] to report ``found``.
        mask_threshold: probability in [0, 1] above which a pixel belongs to the mask.
        uncertain_threshold: below ``exists_threshold`` but at least this: the answer is
            "uncertain" (the node asks "which one do you mean?") rather than "not found".
        verify_attributes: attributes ('category', 'color', 'size') checked against the words:
            when the phrase names one for its target and the attribute head gives the selected
            object a probability below ``verify_min_prob`` for it, the answer becomes "not
            found". () = no check.
        verify_min_prob: see ``verify_attributes``.
        metric_attributes: 'auto' (the head fitted for the checkpoint,
            ``<checkpoint>_metric_attributes.safetensors``, if present), 'none', or a file
            from ``unipixel-ros fit-attributes``; resolved when the predictor is loaded.
        describe_color: where a described object's colour word comes from: 'measured' (the
            colour of its mask's pixels named with the colour survey, as the referring
            resolver names colours; p = the named term's vote share) or 'network' (the colour
            head). Measured on val (weights/MODEL_CARD.md, "Describe"): 'measured' names 9.5
            points more colours right on the randomized shifted scenes and 4.3 fewer on the
            default generator's; the default stays with the head, which keeps what v5 does well.
        canonical_words: the model reads a phrase in its own vocabulary
            (:func:`unipixel_ros.language.canonical.canonical_text`: "the navy tin" -> "the
            blue can"); a phrase already in its words is unchanged. False: the words as said.
    Raises:
        ValueError: a threshold outside [0, 1] or an unknown attribute name.
    """

    exists_threshold: float = 0.8
    mask_threshold: float = 0.5
    uncertain_threshold: float = 0.3
    verify_attributes: tuple = ()
    verify_min_prob: float = 0.1
    metric_attributes: str = 'auto'
    describe_color: str = 'network'
    canonical_words: bool = True

    def __post_init__(self) -> None:
        for name in ('exists_threshold', 'mask_threshold', 'uncertain_threshold',
                     'verify_min_prob'):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if isinstance(self.verify_attributes, str):
            object.__setattr__(self, 'verify_attributes',
                               parse_attribute_list(self.verify_attributes))
        if self.describe_color not in DESCRIBE_COLOR_SOURCES:
            raise ValueError(f'describe_color must be one of {DESCRIBE_COLOR_SOURCES}, got '
                             f'{self.describe_color!r}')
        unknown = set(self.verify_attributes) - set(VERIFIABLE_ATTRIBUTES)
        if unknown:
            raise ValueError(f'verify_attributes: unknown attributes {sorted(unknown)} (choose '
                             f"from {','.join(VERIFIABLE_ATTRIBUTES)} or 'none')")

    def to_dict(self) -> dict:
        """JSON-ready record of the settings (written next to every metric)."""
        d = asdict(self)
        d['verify_attributes'] = list(self.verify_attributes)
        return d


#: The shipped model's settings (the node's parameter defaults and the CLI defaults).
DEFAULT_SETTINGS = DecisionSettings()
