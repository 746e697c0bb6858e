"""Moved to :mod:`numpyvae.data.download`; this name stays only until every import uses the package (then it goes)."""
from .data.download import CHUNK, MIN_RATE, TIMEOUT, fetch  # noqa: F401
