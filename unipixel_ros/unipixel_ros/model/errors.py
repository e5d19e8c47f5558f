"""Errors of the model layer, importable without torch."""


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or does not match the network."""
