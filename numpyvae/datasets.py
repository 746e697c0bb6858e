"""Moved to :mod:`numpyvae.data`; this name stays only until every import uses the package (then it goes)."""
from .data import *  # noqa: F401,F403
from .data import __all__  # noqa: F401
