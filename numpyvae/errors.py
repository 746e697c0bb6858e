"""The package's documented exceptions.

Every error that numpyvae raises on purpose is a subclass of
``NumpyVAEError``, so a caller can catch the package's errors in one place.
Each also subclasses the matching built-in (``ValueError``, ``TypeError``,
``RuntimeError``) so ordinary ``except ValueError`` code keeps working.
"""


class NumpyVAEError(Exception):
    """Base class of every error numpyvae raises on purpose."""


class InputError(NumpyVAEError, ValueError):
    """An argument has the wrong shape, dtype, range, or contains NaN/inf."""


class DataError(NumpyVAEError, ValueError):
    """A data file is missing, truncated, corrupt, or fails its checksum."""


class CheckpointError(NumpyVAEError, ValueError):
    """A checkpoint is truncated, corrupt, foreign, or does not match the model."""


class TrainingError(NumpyVAEError, RuntimeError):
    """Training cannot go on (for example the loss became NaN or inf)."""


class FileError(NumpyVAEError, OSError):
    """A file or folder cannot be written or read: disk full, read-only, a file where a folder should be."""


class RunExistsError(NumpyVAEError, FileExistsError):
    """An output folder already holds a run (or another trainer is writing it)."""
