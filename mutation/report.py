"""Write mutation/REPORT.md from the cosmic-ray sessions in mutation/sessions/.

Every surviving mutant is listed with its diff.  A survivor is explained by
an entry of mutation/equivalent.toml with the same module, line and
operator (and occurrence, when two mutants share a line and operator):

    [[equivalent]]
    module = "vae"
    line = 42
    operator = "core/NumberReplacer"
    occurrence = 3            # optional
    reason = "why the numbers are the same"

A survivor without an entry is marked UNEXPLAINED.
"""
import datetime
import json
import os
import re
import sqlite3
import sys
import tomllib
from importlib import metadata

from run import NOT_SAMPLED, in_sample

HERE = os.path.dirname(os.path.abspath(__file__))
# scratch folder: the repository copies and the cosmic-ray sessions (not committed)
WORK = os.environ.get("NUMPYVAE_MUTATION_WORK", "/tmp/numpyvae-mutation")


def load_equivalent():
    path = os.path.join(HERE, "equivalent.toml")
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        return tomllib.load(f).get("equivalent", [])


def explain(entries, module, line, operator, occurrence):
    """(kind, reason) of the matching entry -- kind "equivalent" (default) or "bug" -- or None."""
    for e in entries:
        if (e["module"], e["line"], e["operator"]) == (module, line, operator) and \
                e.get("occurrence", occurrence) == occurrence:
            return e.get("kind", "equivalent"), e["reason"]
    return None


def applied_row(diff):
    """The line number of the removed line in a mutant's unified diff (None if there is none)."""
    row = None
    for line in (diff or "").splitlines():
        hunk = re.match(r"@@ -(\d+)", line)
        if hunk:
            row = int(hunk.group(1))
        elif row is not None and not line.startswith(("---", "+++", "+")):
            if line.startswith("-"):
                return row
            row += 1
    return None


def wilson(k, n, z=1.96):
    """Wilson score interval for a proportion k/n, in percent."""
    if n == 0:
        return 0.0, 100.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / (1 + z * z / n)
    return 100 * (centre - half), 100 * (centre + half)


def module_results(module):
    db = os.path.join(WORK, "sessions", f"{module}.sqlite")
    if not os.path.exists(db):
        return None
    with sqlite3.connect(db) as c:
        if not c.execute("select name from sqlite_master where name = 'work_results'").fetchone():
            return None                       # a session still being created
        rows = c.execute("""select s.operator_name, s.occurrence, s.start_pos_row, s.definition_name,
                                   r.worker_outcome, r.test_outcome, r.diff, s.job_id, r.output, s.start_pos_col
                            from mutation_specs s left join work_results r on r.job_id = s.job_id
                            order by s.start_pos_row, s.operator_name, s.occurrence""").fetchall()
    info_path = os.path.join(WORK, "sessions", f"{module}.json")
    info = json.load(open(info_path)) if os.path.exists(info_path) else {}
    return rows, info


def write(cfg):
    entries = load_equivalent()
    lines, survivors_md = [], []
    total = {"mutants": 0, "skipped": 0, "unsampled": 0, "killed": 0, "killed_pass2": 0, "survived": 0, "equivalent": 0, "bug": 0, "shifted": 0,
             "pending": 0, "incompetent": 0}
    first, last = float("inf"), 0.0
    for module in cfg["modules"]:
        got = module_results(module)
        if got is None:
            lines.append(f"| {module} | not run | | | | | | | | |")
            continue
        rows, info = got
        pass1 = set(info.get("pass1_survivors", []))
        n = dict.fromkeys(total, 0)
        fraction = cfg["modules"][module].get("sample", 1.0)
        for op, occ, row, definition, worker, test, diff, job, output, col in rows:
            n["mutants"] += 1
            if worker == "SKIPPED" and output != NOT_SAMPLED:
                n["skipped"] += 1
            elif not in_sample(module, row, col, op, occ, fraction):
                n["unsampled"] += 1         # outside the sample: not counted, even if it was run
            elif worker is None:
                n["pending"] += 1
            elif test == "KILLED":
                n["killed"] += 1
                n["shifted"] += applied_row(diff) not in (None, row)
                n["killed_pass2"] += job in pass1
            elif test == "INCOMPETENT" or worker == "EXCEPTION":
                n["incompetent"] += 1
            else:
                n["survived"] += 1
                why = explain(entries, module, row, op, occ)
                n["equivalent"] += why is not None and why[0] == "equivalent"
                n["bug"] += why is not None and why[0] == "bug"
                text = ("**UNEXPLAINED**" if why is None else f"Equivalent: {why[1]}" if why[0] == "equivalent"
                        else f"**Not killed because the code has a bug here** (reported; a strict xfail test records it): {why[1]}")
                survivors_md.append(
                    f"### {module}.py line {row} ({definition}): {op}, occurrence {occ}\n\n"
                    f"{text}\n\n```diff\n{(diff or '').strip()}\n```\n")
        for key in total:
            total[key] += n[key]
        ran = n["killed"] + n["survived"]
        stamps = [info[k] for k in ("started", "pass1_done", "finished", "rerun_started", "rerun_finished") if k in info]
        if stamps:
            first, last = min(first, min(stamps)), max(last, max(stamps))
        score = f"{100 * n['killed'] / ran:.1f}%" if ran else "-"
        src = f"{info.get('commit', '?')}{' + uncommitted edits' if info.get('uncommitted') else ''}"
        lines.append(f"| {module} | {src} | {n['mutants']} | {n['skipped']} | {n['unsampled']} | {ran} "
                     f"| {n['killed'] - n['killed_pass2']} | {n['killed_pass2']} "
                     f"| {n['survived']} ({n['equivalent']} equivalent{', ' + str(n['bug']) + ' bug' if n['bug'] else ''}) | {score} |"
                     + (f" {n['pending']} pending" if n["pending"] else ""))
    wall = (last - first) / 60 if last else 0.0
    ran = total["killed"] + total["survived"]
    score = 100 * total["killed"] / ran if ran else 0.0
    score_eq = 100 * total["killed"] / (ran - total["equivalent"]) if ran > total["equivalent"] else 0.0
    lo, hi = wilson(total["killed"], ran)
    unexplained = total["survived"] - total["equivalent"] - total["bug"]
    head = f"""# Mutation testing report

Generated by `mutation/run.py` on {datetime.date.today().isoformat()} with cosmic-ray
{metadata.version('cosmic-ray')}, Python {'.'.join(map(str, sys.version_info[:3]))}, numpy {metadata.version('numpy')},
hypothesis {metadata.version('hypothesis')} (profile "mutation": 5 derandomized examples per property, no shrinking).
Command: `pip install -e ".[test,mutation]" && nice -n 10 python mutation/run.py` (then `--rerun` for
the survivors after adding tests).  Wall time from the earliest start to the last finish that the sessions' records kept across restarts: {wall:.0f} minutes
(up to 4 lanes in parallel, at nice 10 on a 2-core machine shared with other jobs).  {cfg.get('report', {}).get('note', '')}

**Score: {total['killed']} of {ran} mutants run were killed = {score:.1f}%** (95% interval for the
score of all mutants, sampling error only: {lo:.1f}% to {hi:.1f}%, Wilson).  The survivors shown
equivalent below compute the same numbers as the original, so no test can kill them; without them
{total['killed']} of {ran - total['equivalent']} = {score_eq:.1f}% of the wrong programs are killed.
Survivors that show a bug in the code (listed below, reported): {total['bug']}.  Unexplained survivors: {unexplained}.

How the mutants were chosen:
* cosmic-ray's core operators over the eight modules of the math core;
  {total['skipped']} mutants of operators that config.toml skips, with the reason there (bit-shift,
  bitwise, floor-division and modulo replacements of float arithmetic, `~`/`not` for unary minus,
  `is` for comparisons);
* a reproducible sample (config.toml `sample`, chosen by hash in run.py `in_sample`) of each
  module's other mutants, because the run had to fit in the time the shared machine had:
  {total['unsampled']} mutants outside the samples are not counted (some of them were run before the
  sample was set; their results are left out whatever they were).  estimators.py and mlp.py ran in full.

Pass 1 runs the module's own fast tests (`tests` in mutation/config.toml); a pass-1 survivor then
meets the slower rest of the suite that exercises the module (`more`: whole-model gradient checks,
the derivation notes' doctests; pass 2).  Timeouts count as killed (cosmic-ray's rule).
Other people edited the package while the run went on: {total['shifted']} killed mutants were applied a
few lines away from where their session had listed them (cosmic-ray finds a mutant by its operator
and occurrence, so it mutated the edited file); they are still wrong programs that the tests killed.  Mutants
that did not even import: {total['incompetent']}.

| module | source (commit) | mutants | skipped operator | not sampled | run | killed by `tests` | killed by `more` | survived | score |
|---|---|---|---|---|---|---|---|---|---|
"""
    with open(os.path.join(HERE, "REPORT.md"), "w") as f:
        f.write(head + "\n".join(lines) + "\n\n## Survivors\n\n" + ("\n".join(survivors_md) or "None.\n"))
    print(f"score {score:.1f}% ({total['killed']}/{ran}), {unexplained} unexplained; wrote mutation/REPORT.md")


if __name__ == "__main__":
    with open(os.path.join(HERE, "config.toml"), "rb") as f:
        write(tomllib.load(f))
