"""Calling the student's code: an exception becomes a sentence, never a traceback.

``call(what, fn, *args)`` runs ``fn(*args)`` on copies of the arrays,
with numpy's floating-point warnings silenced (the grader judges the
numbers, NaN included).  If the
student's code raises, it raises ``StudentError`` whose message says what
was called, the exception, and the line of the student's code where it
happened.  NotImplementedError (an exercise not written yet) becomes
``NotWritten``.
"""
import os
import traceback
import warnings

import numpy as np

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NUMPY = os.path.dirname(os.path.abspath(np.__file__))


class StudentError(Exception):
    """The student's code raised; the message is one readable sentence, ``hint`` a likely cause."""

    def __init__(self, message, hint=""):
        super().__init__(message)
        self.hint = hint


class NotWritten(Exception):
    """The student's code raised NotImplementedError: the part is still to do."""


def _student_line(exc):
    """' (line N: `source`)' of the innermost frame outside numpyvae and numpy, or ''."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not os.path.abspath(f.filename).startswith((_PACKAGE, _NUMPY))]
    if not frames:
        return ""
    f = frames[-1]
    return f" (line {f.lineno}: `{f.line.strip()}`)" if f.line else f" (line {f.lineno} of {f.filename})"


def shape_advice(exc):
    """A sentence for the usual cause of a numpy shape error, or ''."""
    text = str(exc)
    if "matmul" in text or "not aligned" in text:
        return "The shapes of a matrix product do not fit: check each factor's shape; a missing .T is the usual cause."
    if "broadcast" in text:
        return "Two arrays' shapes do not broadcast: print the shapes of the operands on that line."
    return ""


def call(what, fn, *args, copy=True):
    """fn(*args), or StudentError / NotWritten with a sentence naming ``what``.

    copy=True hands the student copies of the array arguments, so their code
    cannot change the arrays the grader compares against.
    """
    if copy:
        args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    if not callable(fn):
        raise StudentError(f"{what}: expected a function or class, got {type(fn).__name__} {fn!r:.60}")
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args)
    except NotImplementedError:
        raise NotWritten(f"{what} raises NotImplementedError") from None
    except Exception as exc:                       # the student's bug, reported as a sentence
        raise StudentError(f"{what} raised {type(exc).__name__}: {exc}{_student_line(exc)}",
                           shape_advice(exc)) from None
