"""Error type raised by the geometry core for inputs it cannot turn into geometry."""


class GeometryError(ValueError):
    """Invalid or unusable geometric input (bad intrinsics, empty mask, invalid depth, ...).

    The message always names the problem (and the offending shapes or values) so that a node
    can forward it verbatim in a result message or log line.
    """
