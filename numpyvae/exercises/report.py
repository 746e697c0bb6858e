"""Verdicts: one Part per thing graded, a Report per exercise.

A Part is PASS, FAIL or TODO (the student's code raised NotImplementedError).
``Report.assert_passed()`` is what a test cell runs: it prints nothing
itself, and raises AssertionError whose message lists every failed part
(or NotImplementedError when a part is not written yet).
"""
from dataclasses import dataclass, field

PASS, FAIL, TODO = "PASS", "FAIL", "TODO"


@dataclass
class Part:
    """One graded part: its verdict, a one-line detail (ours vs expected), and a hint."""

    name: str
    verdict: str
    detail: str = ""
    hint: str = ""

    @property
    def passed(self):
        return self.verdict == PASS

    def __str__(self):
        text = f"{self.verdict}  {self.name}: {self.detail}"
        return text + (f"\n      HINT: {self.hint}" if self.hint else "")


@dataclass
class Report:
    """The verdicts of one exercise, graded with one seed."""

    exercise: str
    seed: int
    parts: list = field(default_factory=list)
    note: str = ""          # which checks ran ("all public checks passed; hidden checks run when graded")

    @property
    def passed(self):
        return bool(self.parts) and all(p.passed for p in self.parts)

    @property
    def score(self):
        """(parts passed, parts graded)."""
        return sum(p.passed for p in self.parts), len(self.parts)

    def add(self, part):
        self.parts.append(part)
        return part

    def __str__(self):
        got, total = self.score
        lines = [f"{self.exercise} (seed {self.seed}): {got} of {total} parts passed"]
        if self.note and self.passed:
            lines[0] += f": {self.note}"
        return "\n".join(lines + [f"  {p}" for p in self.parts])

    def __repr__(self):
        got, total = self.score
        return f"<Report {self.exercise!r}: {got}/{total} parts passed>"

    def _repr_pretty_(self, printer, cycle):      # IPython shows the full table
        printer.text(str(self))

    def assert_passed(self):
        """Raise NotImplementedError if a part is not written yet, AssertionError if one failed."""
        todo = [p.detail for p in self.parts if p.verdict == TODO and not p.detail.startswith("not graded")]
        if todo:
            raise NotImplementedError(f"{self.exercise}: not written yet: " + "; ".join(dict.fromkeys(todo)))
        failed = [p for p in self.parts if p.verdict == FAIL]
        if failed:
            raise AssertionError(f"{self.exercise}: {len(failed)} of {len(self.parts)} parts failed\n"
                                 + "\n".join(str(p) for p in failed))
        return self
