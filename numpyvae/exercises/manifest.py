"""The assignment, as the instructor defines it: exercises, graded parts, points, hidden-case seed.

A master notebook declares its assignment in its metadata::

    "numpyvae": {"assignment": {"linear": {"dx": 1, "dW": 1, "db": 1}, "tanh": {"forward": 1, "dx": 1}, ...}}

(an exercise given as a list of parts gets 1 point per part; parts whose
code the handout provides, such as Linear's forward, are never graded).
``make-manifest`` writes that, with a hidden seed the instructor keeps, to
a JSON manifest; ``grade`` reads the assignment from the manifest (or the
master) and never from the submission.  The student version keeps the
exercise list (harmless: nothing reads it when grading) but not the seed.
"""
import json
import math
import os
import secrets

from ..errors import InputError
from .checks import EXERCISES


class Assignment:
    """exercises (ordered keys), points {exercise: {part: points}}, seed (public), hidden_seed."""

    def __init__(self, name, points, hidden_seed, seed=0):
        self.name, self.points, self.hidden_seed, self.seed = name, points, hidden_seed, seed
        self.exercises = list(points)

    @property
    def max_score(self):
        return sum(sum(p.values()) for p in self.points.values())

    @property
    def columns(self):
        """(exercise, part) in order: the CSV's columns."""
        return [(key, part) for key, pts in self.points.items() for part in pts]

    def to_json(self):
        return {"assignment": self.name, "exercises": self.points, "seed": self.seed,
                "hidden_seed": self.hidden_seed}


def check_points(points, where):
    """{exercise: {part: points}} checked against the registry; InputError naming ``where``."""
    if not isinstance(points, dict) or not points:
        raise InputError(f"{where}: expected a non-empty mapping exercise -> parts, got {points!r:.80}")
    checked = {}
    for key, parts in points.items():
        if key not in EXERCISES:
            raise InputError(f"{where}: unknown exercise {key!r}; known: {sorted(EXERCISES)}")
        ex = EXERCISES[key]
        if isinstance(parts, list):
            parts = {p: 1 for p in parts}
        if not isinstance(parts, dict) or not parts:
            raise InputError(f"{where}: {key}: expected parts with points, got {parts!r:.80}")
        checked[key] = {}
        for part, value in parts.items():
            if part in ex.provided:
                raise InputError(f"{where}: {key}: {part!r} is provided code in the handout, not a graded part")
            if part not in ex.parts:
                raise InputError(f"{where}: {key}: unknown part {part!r}; graded parts: {list(ex.graded_parts)}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0:
                raise InputError(f"{where}: {key}: {part}: points must be a finite number >= 0, got {value!r}")
            checked[key][part] = value
    return checked


def from_master(path, hidden_seed=None):
    """The Assignment a master notebook declares (metadata numpyvae.assignment)."""
    from .notebook import read_notebook
    nb = read_notebook(path)
    meta = nb.get("metadata", {}).get("numpyvae", {})
    points = meta.get("assignment") if isinstance(meta, dict) else None
    if points is None:
        raise InputError(f"master: {path} declares no assignment (metadata numpyvae.assignment)")
    name = os.path.splitext(os.path.basename(path))[0]
    return Assignment(name, check_points(points, f"{path}: metadata numpyvae.assignment"),
                      secrets.randbelow(2 ** 31) if hidden_seed is None else int(hidden_seed))


def load(path):
    """The Assignment in the manifest file at ``path`` (JSON written by make-manifest)."""
    from .grader import read_submission
    try:
        data = json.loads(read_submission(path).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(f"manifest: {path} is not a readable JSON manifest: {exc}") from None
    if not isinstance(data, dict) or "exercises" not in data or "hidden_seed" not in data:
        raise InputError(f"manifest: {path}: expected keys 'assignment', 'exercises', 'hidden_seed'")
    for key in ("seed", "hidden_seed"):
        value = data.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"manifest: {path}: {key} must be an integer >= 0, got {value!r}")
    return Assignment(str(data.get("assignment", os.path.basename(path))),
                      check_points(data["exercises"], f"manifest {path}"), data["hidden_seed"], data.get("seed", 0))
