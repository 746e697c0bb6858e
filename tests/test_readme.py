"""The README's Python examples run as written (so the API tour cannot rot)."""
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 2, f"ours {len(BLOCKS)} python blocks in README.md vs expected at least 2"


def test_readme_examples_run_in_order():
    """Each block runs as written; a block may continue the one before it (one namespace, in order)."""
    namespace = {}
    for i, block in enumerate(BLOCKS):
        exec(compile("import numpyvae\n" + block, f"README.md python block {i}", "exec"), namespace)
