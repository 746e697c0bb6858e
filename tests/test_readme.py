"""The README and the book's pages say what is true: their Python runs, their commands exist, their links resolve.

The README is the landing page (issue 22); the API tour, the homework example and
the rest moved to the book's pages in docs/, so every Markdown page there is read too.
"""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README] + sorted((ROOT / "docs").glob("*.md"))


def python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def bash_lines(path):
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(encoding="utf-8"), re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line:
                lines.append(line)
    return lines


def test_the_book_pages_have_python_examples():
    counts = {p.relative_to(ROOT).as_posix(): len(python_blocks(p)) for p in PAGES}
    assert counts["docs/api-tour.md"] >= 2, f"ours {counts['docs/api-tour.md']} python blocks in docs/api-tour.md vs expected at least 2"
    assert sum(counts.values()) >= 4, f"ours {counts} vs expected at least 4 python blocks in all"


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_examples_run_in_order(page):
    """Each block runs as written; a block may continue the one before it (one namespace per page, in order)."""
    namespace = {}
    for i, block in enumerate(python_blocks(page)):
        exec(compile("import numpyvae\n" + block, f"{page.name} python block {i}", "exec"), namespace)


def test_readme_is_a_landing_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 160, f"README.md has {len(lines)} lines vs at most about 150 expected (a landing page)"


SETUP = ['pip install . && python -m numpyvae train', 'pip install -e ".[test]" && pytest']


def test_the_two_set_up_commands_are_stated_and_ci_runs_the_test_command():
    for page in (README, ROOT / "docs" / "index.md"):
        stated = bash_lines(page)
        for command in SETUP:
            assert command in stated, f"{page.name}: {command!r} not among its commands {stated}"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert SETUP[1] in ci, ".ci/run no longer runs the README's test command verbatim"


def _parse(module, argv):
    """Parse argv with the command's own parser (nothing runs); returns the namespace or raises SystemExit."""
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    try:
        from cli_parsers import parser_of
    finally:
        sys.path.pop(0)
    return parser_of(module).parse_args(argv)


def test_every_numpyvae_command_on_a_page_parses():
    """Each `python -m numpyvae ...` line of the README and the book is accepted by the current parser."""
    commands = {"python -m numpyvae.exercises": "numpyvae.exercises.__main__", "python -m numpyvae": "numpyvae.cli"}
    seen = 0
    for page in PAGES:
        for line in bash_lines(page):
            for part in line.split("&&"):
                words = shlex.split(part.strip())
                for i in range(len(words)):
                    if words[i:i + 3] in (["python", "-m", "numpyvae"], ["python", "-m", "numpyvae.exercises"]):
                        prefix = " ".join(words[i:i + 3])
                        argv = words[i + 3:]
                        try:
                            _parse(commands[prefix], argv)
                        except SystemExit as stop:
                            pytest.fail(f"{page.name}: `{part.strip()}` is refused by the parser (exit {stop.code})")
                        seen += 1
    assert seen >= 6, f"ours {seen} numpyvae commands found on the pages vs expected at least 6"


def test_the_readme_links_resolve():
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    assert len(links) >= 10, f"ours {len(links)} links in README.md vs expected at least 10 (its table of contents)"
    missing = [link for link in links if "://" not in link and not (ROOT / link).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_book_command_is_the_documented_one():
    """The README, docs/book.md and the configuration's docstring state the same build command."""
    command = 'pip install -e ".[docs]" && python -m sphinx -W --keep-going -b html -c docs . docs/_build/html'
    for path in (README, ROOT / "docs" / "book.md", ROOT / "docs" / "conf.py"):
        assert command in path.read_text(encoding="utf-8"), f"{path.relative_to(ROOT)} does not state {command!r}"
    assert "docs =" in (ROOT / "setup.cfg").read_text(encoding="utf-8"), "setup.cfg has no [docs] extra"
