"""Errors the pipeline raises. Each carries a message that is safe to log (no pixels, no detections)."""


class VeilError(Exception):
    """Base class: anything that stops one file from being published."""

    kind = "error"


class InputError(VeilError):
    """The input itself is unusable: unreadable, unsupported, hostile or over a limit. Quarantine it."""

    kind = "input"


class ModelError(VeilError):
    """A model is missing, corrupt or does not match its declared contract. Refuse to start."""

    kind = "model"


class QuantizationError(ModelError):
    """A model cannot be quantized to int8 with the ranges Veil ships (none for its file, or an onnxruntime
    that cannot apply them)."""


class ProcessingError(VeilError):
    """Detection, masking or encoding failed part-way. Never publish the partial result."""

    kind = "processing"
