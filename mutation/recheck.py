"""Re-apply the first report's survivors that were wrongly called equivalent; show the new tests kill them.

    python mutation/recheck.py

Uses mutation/planted.py's machinery (a scratch copy of the repository under /tmp;
the working tree is never modified).  Each mutant is the exact diff REPORT.md shows.
"""
import sys

import planted

planted.PATHS = ["tests/test_mutation_survivors.py", "tests/test_gradcheck_numbers.py", "tests/test_gradcheck.py"]
planted.WORK = planted.WORK.replace("planted", "recheck")
planted.PLANTS = {
    "gradcheck-passed-LtE": (
        "gradcheck.py line 86 (passed): core/ReplaceComparisonOperator_Lt_LtE", [
            ("numpyvae/gradcheck.py", "return self.error < TOL", "return self.error <= TOL")]),
    "gradcheck-probe-minus-half": (
        "gradcheck.py line 114 (_changes_output): core/NumberReplacer, occurrence 61 (0.5 -> -0.5)", [
            ("numpyvae/gradcheck.py", "arr + 0.5 + np.abs(arr)", "arr + -0.5 + np.abs(arr)")]),
    "gradcheck-probe-one-and-half": (
        "gradcheck.py line 114 (_changes_output): core/NumberReplacer, occurrence 60 (0.5 -> 1.5); "
        "expected to survive (see REPORT.md)", [
            ("numpyvae/gradcheck.py", "arr + 0.5 + np.abs(arr)", "arr + 1.5 + np.abs(arr)")]),
}

if __name__ == "__main__":
    sys.exit(planted.main(sys.argv[1:]))
