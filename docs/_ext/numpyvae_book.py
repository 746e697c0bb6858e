"""The course book's own Sphinx pieces (docs/conf.py loads this module).

- ``eq. (n*)`` links: every "(n*)" in a page's text (not in math or code)
  becomes a link to row (n*) of the table in derivations/README.md, where
  equations (1*)-(7*) are restated; the rows get the anchors ``eq-n-star``.
- ``{cli-help}``: the help text of a command, taken from its argparse parser
  at build time (so the command line's reference cannot drift from the code).
- the homework handouts: the student versions of notebooks/homework/NN-*.ipynb,
  written by ``numpyvae.exercises.make_student`` into docs/_generated/homework/
  before Sphinx reads the sources.
"""
import importlib
import io
import json
import os
import re
import shutil
import sys
from pathlib import Path

from docutils import nodes

from cli_parsers import parser_of
from docutils.parsers.rst import Directive

EQ_DOC = "derivations/README"
EQ_STAR = re.compile(r"\((\d{1,2})\\?\*\)")
# text inside these is left alone (math, code, existing links, headings, the table's own cells)
SKIP = (nodes.literal, nodes.literal_block, nodes.math, nodes.math_block, nodes.raw, nodes.reference,
        nodes.title, nodes.comment, nodes.target)


def eq_anchor(n):
    return f"eq-{n}-star"


def _inside(node, kinds):
    while node is not None:
        if isinstance(node, kinds):
            return True
        node = node.parent
    return False


def _anchor_rows(doctree):
    """On derivations/README: give each table row whose first cell is "(n*)" the id eq-n-star."""
    found = set()
    for row in doctree.findall(nodes.row):
        entries = [c for c in row.children if isinstance(c, nodes.entry)]
        if not entries:
            continue
        m = EQ_STAR.fullmatch(entries[0].astext().strip())
        if m:
            row["ids"].append(eq_anchor(m.group(1)))
            found.add(m.group(1))
    return found


def defined_equations(srcdir):
    """The n of every row "| (n*) | ..." of the table in derivations/README.md."""
    text = (Path(srcdir) / (EQ_DOC + ".md")).read_text(encoding="utf-8")
    return set(re.findall(r"^\|\s*\((\d{1,2})\\?\*\)\s*\|", text, re.M))


def _defining_cell(node):
    """True inside the first cell of a row that carries an eq-n-star anchor."""
    while node is not None and not isinstance(node, nodes.entry):
        node = node.parent
    if node is None:
        return False
    row = node.parent
    return any(i.startswith("eq-") for i in row["ids"]) and row.index(node) == 0


def link_equations(app, doctree, docname):
    anchors = app.env.numpyvae_eq_anchors
    if docname == EQ_DOC:
        _anchor_rows(doctree)
    target = app.builder.get_relative_uri(docname, EQ_DOC) if docname != EQ_DOC else ""
    for text in list(doctree.findall(nodes.Text)):
        if _inside(text.parent, SKIP) or (docname == EQ_DOC and _defining_cell(text.parent)):
            continue
        value = text.astext()
        parts, last = [], 0
        for m in EQ_STAR.finditer(value):
            if m.group(1) not in anchors:
                continue                        # only the equations the table defines
            parts.append(nodes.Text(value[last:m.start()]))
            parts.append(nodes.reference("", "", nodes.Text(m.group(0).replace("\\", "")), internal=True,
                                         refuri=f"{target}#{eq_anchor(m.group(1))}", classes=["eq-star"]))
            last = m.end()
        if not parts:
            continue
        parts.append(nodes.Text(value[last:]))
        text.parent.replace(text, [p for p in parts if not (isinstance(p, nodes.Text) and not p.astext())])


def _help(parser):
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        return parser.format_help().rstrip()
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


class CliHelp(Directive):
    """``{cli-help} MODULE``: the help of the parser ``MODULE.main`` builds, then of each subcommand.

    New subcommands appear by themselves: they are read from the parser.
    """

    required_arguments = 1
    option_spec = {"prog": str}

    def run(self):
        import argparse

        parser = parser_of(self.arguments[0])
        parser.prog = self.options.get("prog", parser.prog)
        out = [nodes.literal_block(_help(parser), _help(parser), language="text", classes=["cli-help"])]
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction):
                continue
            for name, sub in action.choices.items():
                sub.prog = f"{parser.prog} {name}"
                section = nodes.section(ids=[nodes.make_id(f"{parser.prog} {name}")], names=[nodes.fully_normalize_name(f"{parser.prog} {name}")])
                section += nodes.title("", "", nodes.literal(text=f"{parser.prog} {name}"))
                text = _help(sub)
                section += nodes.literal_block(text, text, language="text", classes=["cli-help"])
                out.append(section)
        return out


def write_api_modules(app):
    """docs/_generated/api-modules.md: an ``automodule`` section for every module of the package.

    Modules are found with pkgutil, so a new module appears by itself (docs/api.md
    includes this file); ``__main__`` modules, which would run, are left out.
    """
    import pkgutil

    import numpyvae

    names = ["numpyvae"] + sorted(m.name for m in pkgutil.walk_packages(numpyvae.__path__, "numpyvae.")
                                  if not m.name.endswith("__main__"))
    lines = []
    for name in names:
        lines += [f"## `{name}`", "", "```{eval-rst}", f".. automodule:: {name}"]
        if name == "numpyvae":
            lines += ["   :no-members:"]          # its names are documented where they are defined
        lines += ["```", ""]
    out = Path(app.srcdir) / "docs" / "_generated" / "api-modules.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines)
    if not out.exists() or out.read_text(encoding="utf-8") != text:
        out.write_text(text, encoding="utf-8")


def remember_equations(app):
    app.env.numpyvae_eq_anchors = defined_equations(app.srcdir)


def make_handouts(app):
    """Student versions of the homework masters, generated before the sources are read."""
    from numpyvae.exercises.notebook import make_student

    root = Path(app.srcdir)
    out = root / "docs" / "_generated" / "homework"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for master in sorted((root / "notebooks" / "homework").glob("[0-9]*.ipynb")):
        make_student(str(master), str(out / master.name))
        handout = out / master.name          # nbformat 4.5 wants an id on every cell; number the missing ones
        nb = json.loads(handout.read_text(encoding="utf-8"))
        taken = {c["id"] for c in nb["cells"] if "id" in c}
        for i, cell in enumerate(nb["cells"]):
            if "id" not in cell:
                cell["id"] = next(f"cell-{i}-{k}" for k in range(len(nb["cells"]) + 1) if f"cell-{i}-{k}" not in taken)
                taken.add(cell["id"])
        handout.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def docstring_as_written(app, what, name, obj, options, lines):
    """Show a docstring as it is written (plain text, not reStructuredText).

    The package's docstrings are written for ``help()``: shapes, formulas and
    lists in plain text.  Read as reStructuredText they would be misparsed, so
    the API reference keeps the one-line summary as a sentence and the rest as
    preformatted text, exactly as ``help()`` shows it.
    """
    if not lines:
        return
    text = [line.rstrip() for line in lines]
    while text and not text[-1]:
        text.pop()
    summary = []
    while text and text[0].strip():
        summary.append(text.pop(0).strip())
    while text and not text[0].strip():
        text.pop(0)
    # the summary as a sentence: ``literal`` stays a literal, every other markup character is escaped
    pieces = re.split(r"(``[^`]+``)", " ".join(summary))
    sentence = "".join(p if p.startswith("``") and p.endswith("``") else re.sub(r"([\\`*_|<>\[\]])", r"\\\1", p)
                       for p in pieces)
    body = [sentence] if summary else []
    if text:
        body += ["", "::", ""] + ["    " + line for line in text]
    lines[:] = body + [""]


TAG = re.compile(r"\\tag\*?\{[^{}]*\}")


def tags_outside_split(app, doctree):
    """A displayed formula with a line break and a \\tag: keep the \\tag outside Sphinx's split.

    Sphinx wraps a display that contains \\\\ in \\begin{split} ... \\end{split}, and MathJax
    refuses a \\tag inside split ("\\tag not allowed in split environment"): note 12's (C3),
    whose \\substack breaks a line, showed an error instead of the formula. Such a block is
    written out here as \\[ \\begin{split} body \\end{split} \\tag{..} \\], unwrapped.
    """
    for node in list(doctree.findall(nodes.math_block)):
        latex = node.astext()
        tags = TAG.findall(latex)
        if not tags or "\\\\" not in latex or node.get("nowrap") or "\n\n" in latex.strip():
            continue
        body = TAG.sub("", latex).strip()
        node.children = []
        node += nodes.Text("\\[\\begin{split}" + body + "\\end{split}" + "".join(tags) + "\\]")
        node["nowrap"] = True


def setup(app):
    app.connect("doctree-read", tags_outside_split)
    app.connect("autodoc-process-docstring", docstring_as_written)
    app.connect("builder-inited", make_handouts)
    app.connect("builder-inited", remember_equations)
    app.connect("doctree-resolved", link_equations)
    app.add_directive("cli-help", CliHelp)
    app.connect("builder-inited", write_api_modules)
    return {"parallel_read_safe": True, "parallel_write_safe": False, "version": "1"}
