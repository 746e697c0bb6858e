"""Homework notebooks: reading them safely, and the student version made from the master.

Master notebooks mark each solution with the lines (nbgrader's convention;
the cells carry nbgrader's metadata too, so ``nbgrader generate_assignment``
works on them)

    ### BEGIN SOLUTION
    ...the lecturer's code or answer...
    ### END SOLUTION

and hidden tests (nbgrader's autograder runs them; students never see them) with
``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``.

``make_student`` replaces every solution region by ``raise NotImplementedError``
(at the region's indentation) in code cells, and by "YOUR ANSWER HERE" in
markdown cells, removes hidden-test regions, drops the cells tagged
``master-only`` (a note to the lecturer), and clears all outputs.  Notebooks
are read and written as plain JSON (nbformat 4).  Grading is ``grader``'s.
"""
import json
import os
import tempfile

from ..errors import InputError

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
STUDENT_CODE = ("# YOUR CODE HERE",
                'raise NotImplementedError("exercise not done yet: replace this line with your code")')
STUDENT_ANSWER = "*YOUR ANSWER HERE*"
MASTER_ONLY = "master-only"          # a cell tag: the cell is left out of the student version


def parse_notebook(data, path):
    """The notebook whose bytes are ``data`` as a dict; InputError (naming ``path``) unless it is nbformat 4."""
    if not data.strip():
        raise InputError(f"notebook: {path} is empty")
    try:
        nb = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError, MemoryError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise InputError(f"notebook: {path} is not a readable .ipynb (JSON) file: {why}") from None
    if not isinstance(nb, dict) or nb.get("nbformat") != 4 or not isinstance(nb.get("cells"), list):
        raise InputError(f"notebook: {path} is not an nbformat-4 notebook (expected a 'cells' list and nbformat 4)")
    if not all(isinstance(c, dict) and isinstance(c.get("source", ""), (str, list)) for c in nb["cells"]):
        raise InputError(f"notebook: {path}: a cell is not an object with a source")
    return nb


def read_notebook(path):
    """The notebook at ``path`` as a dict; InputError unless it is an nbformat-4 notebook (never blocks on a FIFO)."""
    from .grader import read_submission
    if not os.path.lexists(path):
        raise InputError(f"notebook: no file {path}")
    return parse_notebook(read_submission(path), path)


def source_of(cell):
    """A cell's source as one string (nbformat allows a string or a list of lines)."""
    src = cell.get("source", "")
    return "".join(s for s in src if isinstance(s, str)) if isinstance(src, list) else str(src)


def _strip(source, where, code):
    """(source with every solution region replaced, number of regions).

    code=True: by NotImplementedError at the region's indentation; False: by YOUR ANSWER HERE.
    InputError names ``where`` and the line if a BEGIN has no END or an END no BEGIN.
    """
    out, inside, regions, hidden = [], None, 0, None
    for n, line in enumerate(source.splitlines(keepends=True), 1):
        text = line.strip()
        if text.startswith(HIDDEN_BEGIN):
            if hidden is not None:
                raise InputError(f"{where}: line {n}: {HIDDEN_BEGIN!r} inside the region opened at line {hidden}")
            hidden = n
            continue
        if text.startswith(HIDDEN_END):
            if hidden is None:
                raise InputError(f"{where}: line {n}: {HIDDEN_END!r} without a {HIDDEN_BEGIN!r} before it")
            hidden = None
            continue
        if hidden is not None:
            continue
        if text.startswith(BEGIN):
            if inside is not None:
                raise InputError(f"{where}: line {n}: {BEGIN!r} inside the region opened at line {inside}")
            inside, regions = n, regions + 1
            indent = line[:len(line) - len(line.lstrip())]
            out += [indent + s + "\n" for s in (STUDENT_CODE if code else (STUDENT_ANSWER,))]
        elif text.startswith(END):
            if inside is None:
                raise InputError(f"{where}: line {n}: {END!r} without a {BEGIN!r} before it")
            inside = None
        elif inside is None:
            out.append(line)
    if inside is not None:
        raise InputError(f"{where}: line {inside}: {BEGIN!r} has no {END!r}")
    if hidden is not None:
        raise InputError(f"{where}: line {hidden}: {HIDDEN_BEGIN!r} has no {HIDDEN_END!r}")
    return "".join(out), regions


def make_student(master, out):
    """Write the student version of the notebook ``master`` to the file ``out``.

    Cells tagged "master-only" are left out.
    Returns the number of solution regions replaced; InputError if there is none
    (then the notebook is not a master), if ``out`` is the master itself (by any
    path or link), or if ``out`` exists and is not a student version made before
    (a master above all: a link to the masters' folder must not overwrite them).
    """
    _check_out(master, out)
    nb = read_notebook(master)
    nb["cells"] = [c for c in nb["cells"] if MASTER_ONLY not in c.get("metadata", {}).get("tags", [])]
    total = 0
    for i, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") not in ("code", "markdown"):
            continue
        src, n = _strip(source_of(cell), f"{master}: cell {i}", code=cell["cell_type"] == "code")
        cell["source"] = src.splitlines(keepends=True)
        total += n
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    if total == 0:
        raise InputError(f"master: {master} has no {BEGIN!r} region: is it a master notebook?")
    meta = nb.setdefault("metadata", {}).setdefault("numpyvae", {})
    meta["generated_from"] = os.path.basename(master)
    folder = os.path.dirname(os.path.abspath(out))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".student-", suffix=".ipynb", dir=folder)
    except OSError as exc:
        raise InputError(f"out: cannot write {out}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(nb, fh, indent=1, ensure_ascii=False)
            fh.write("\n")
        os.replace(tmp, out)                  # atomic; replaces a link itself, never the file it points to
    except OSError as exc:
        os.unlink(tmp)
        raise InputError(f"out: cannot write {out}: {exc.strerror or exc}") from None
    return total


def _check_out(master, out):
    """InputError unless writing the student version to ``out`` loses nothing."""
    if os.path.isdir(out):
        raise InputError(f"out: {out} is a folder; expected the path of the student notebook")
    if os.path.lexists(out):
        if os.path.exists(master) and os.path.exists(out) and os.path.samefile(master, out):
            raise InputError(f"out: {out} is the master notebook itself; write the student version elsewhere")
        try:
            existing = read_notebook(out)
        except InputError:
            raise InputError(f"out: {out} exists and is not a student notebook made before; "
                             "not overwritten (remove it, or choose another folder)") from None
        text = "".join(source_of(c) for c in existing["cells"])
        made = isinstance(existing.get("metadata", {}).get("numpyvae"), dict) and \
            "generated_from" in existing["metadata"]["numpyvae"]
        if BEGIN in text or not made:
            raise InputError(f"out: {out} exists and is " + ("a master notebook (it has solution regions)"
                             if BEGIN in text else "not a student notebook made before") +
                             "; not overwritten (remove it, or choose another folder)")


def masters_in(paths):
    """The .ipynb files named by ``paths`` (files, or folders searched at their top level), sorted."""
    found = []
    for p in paths:
        if os.path.isdir(p):
            found += sorted(os.path.join(p, f) for f in os.listdir(p) if f.endswith(".ipynb")
                            and os.path.isfile(os.path.join(p, f)))
        elif p.endswith(".ipynb") and os.path.isfile(p):
            found.append(p)
        else:
            raise InputError(f"masters: {p} is neither a folder nor an .ipynb file")
    if not found:
        raise InputError(f"masters: no .ipynb file in {', '.join(paths)}")
    return found
