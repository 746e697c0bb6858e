"""Mutation testing of numpyvae's math core with cosmic-ray; writes mutation/REPORT.md.

Outside CI (it takes tens of minutes).  From the repository root:

    pip install -e ".[test,mutation]"
    nice -n 10 python mutation/run.py                 # every module in config.toml
    nice -n 10 python mutation/run.py --modules optim # some of them
    nice -n 10 python mutation/run.py --resume        # continue after an interruption
    nice -n 10 python mutation/run.py --rerun         # only the survivors, after adding tests
    python mutation/run.py --report-only              # rewrite REPORT.md from the sessions

What it does, per module of the math core (mutation/config.toml):

1. copies the repository (without .git) into a scratch folder, one per lane,
   so that the mutated files never touch the working tree;
2. ``cosmic-ray init`` lists every mutant of the module; ``cr-filter-operators``
   skips the operators named in config.toml (and why they are skipped);
3. ``cosmic-ray baseline`` checks the chosen tests pass on the unmutated code;
4. ``cosmic-ray exec`` applies each mutant in turn and runs the module's
   tests (``tests`` in config.toml) through mutation/forkserver.py;
5. pass 2: the survivors are run again against the same tests plus ``more``:
   the slower rest of the suite that exercises the module (whole-model
   gradient checks, the derivation notes' doctests);
6. REPORT.md: the score per module and overall, and every survivor with its
   diff and the reason it is equivalent (mutation/equivalent.toml), or
   marked UNEXPLAINED.
"""
import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import threading
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
NOT_SAMPLED = "not in the sample (config.toml: sample)"
# scratch folder: the repository copies and the cosmic-ray sessions (not committed)
WORK = os.environ.get("NUMPYVAE_MUTATION_WORK", "/tmp/numpyvae-mutation")
ROOT = os.path.dirname(HERE)


def load_config():
    with open(os.path.join(HERE, "config.toml"), "rb") as f:
        return tomllib.load(f)


def copy_repo(dest):
    """Copy the working tree (no .git, caches or build metadata) to dest/repo."""
    repo = os.path.join(dest, "repo")
    if os.path.exists(repo):
        shutil.rmtree(repo)
    skip = {".git", "__pycache__", ".pytest_cache", ".hypothesis", "numpyvae.egg-info", "runs"}
    shutil.copytree(ROOT, repo, ignore=lambda d, names: [n for n in names if n in skip])
    return repo


def start_server(repo, sock):
    """Start the fork server for one lane; returns the Popen (stopped by stop_server)."""
    env = dict(os.environ, PYTHONPATH=repo, NUMPYVAE_HYPOTHESIS="mutation", PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.Popen([sys.executable, "-m", "mutation.forkserver", "serve", sock], cwd=repo, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(sock + ".log", "w"))
    for _ in range(600):                      # the imports take seconds on a busy machine
        if os.path.exists(sock):
            return proc
        time.sleep(0.1)
    raise RuntimeError(f"fork server did not start: see {sock}.log")


def test_command(sock, paths):
    args = ["-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--doctest-glob=*.md",
            "-W", "ignore::pytest.PytestAssertRewriteWarning", *paths]
    return f"{sys.executable} -m mutation.forkserver run {sock} -- " + " ".join(args)


def write_session_config(path, module, command, cfg):
    excludes = ", ".join(json.dumps(e) for e in cfg["skip-operators"]["patterns"])
    with open(path, "w") as f:
        f.write(f'[cosmic-ray]\nmodule-path = "numpyvae/{module}.py"\ntimeout = {cfg["timeout"]}\n'
                f'excluded-modules = []\ntest-command = "{command}"\n\n'
                f'[cosmic-ray.distributor]\nname = "local"\n\n'
                f'[cosmic-ray.filters.operators-filter]\nexclude-operators = [{excludes}]\n')


def cr(*args, cwd):
    """Run a cosmic-ray command line tool from this interpreter's environment."""
    exe = os.path.join(os.path.dirname(sys.executable), args[0])
    subprocess.run([exe, *args[1:]], cwd=cwd, check=True,
                   env=dict(os.environ, PYTHONPATH=cwd, NUMPYVAE_HYPOTHESIS="mutation"))


def survivors_table_ready(db):
    """Did cosmic-ray init finish on this session (an interrupted init leaves no mutants)?"""
    with sqlite3.connect(db) as c:
        return bool(c.execute("select name from sqlite_master where name = 'mutation_specs'").fetchone()
                    and c.execute("select count(*) from mutation_specs").fetchone()[0])


def survivors(db):
    with sqlite3.connect(db) as c:
        return [r[0] for r in c.execute("select job_id from work_results where test_outcome = 'SURVIVED'")]


def in_sample(module, row, col, operator, occurrence, fraction):
    """Is this mutant in the module's sample?  A reproducible choice by hash (fraction 1: all)."""
    h = int(hashlib.sha256(f"{module}:{row}:{col}:{operator}:{occurrence}".encode()).hexdigest(), 16)
    return h % 10_000 < fraction * 10_000


def sample_pending(db, module, fraction):
    """Mark all but a reproducible fraction of the not-yet-run mutants as skipped ("not sampled").

    A mutant is in the sample when sha256(module:line:column:operator:occurrence) falls in
    the first ``fraction`` of its range: the same mutants are chosen on every run.
    """
    with sqlite3.connect(db) as c:
        rows = c.execute("""select s.job_id, s.start_pos_row, s.start_pos_col, s.operator_name, s.occurrence
                            from mutation_specs s left join work_results r on r.job_id = s.job_id
                            where r.job_id is null""").fetchall()
        out = [("SKIPPED", NOT_SAMPLED, None, None, job) for job, row, col, op, occ in rows
               if not in_sample(module, row, col, op, occ, fraction)]
        c.executemany("insert into work_results (worker_outcome, output, test_outcome, diff, job_id) "
                      "values (?, ?, ?, ?, ?)", out)


def run_module(module, lane_dir, repo, sock, cfg, rerun=False, resume=False, no_more=False):
    """Steps 2-5 for one module; the session database is WORK/sessions/<module>.sqlite."""
    mcfg = cfg["modules"][module]
    sessions = os.path.join(WORK, "sessions")
    os.makedirs(sessions, exist_ok=True)
    db = os.path.join(sessions, f"{module}.sqlite")
    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    timing = {"module": module, "started": time.time(), "commit": git("rev-parse", "--short", "HEAD"),
              "uncommitted": bool(git("status", "--porcelain", f"numpyvae/{module}.py"))}
    info_path = os.path.join(sessions, f"{module}.json")
    if rerun and os.path.exists(info_path):
        with open(info_path) as f:
            timing = dict(json.load(f), rerun_started=time.time())
    cfg1 = os.path.join(lane_dir, f"{module}.toml")
    write_session_config(cfg1, module, test_command(sock, mcfg["tests"]), cfg)
    if rerun:           # only the survivors of an earlier run, against today's tests
        again = survivors(db)
        with sqlite3.connect(db) as c:
            c.executemany("delete from work_results where job_id = ?", [(j,) for j in again])
    elif resume and os.path.exists(db) and survivors_table_ready(db):
        pass            # cosmic-ray exec runs only the mutants without a result yet
    else:
        if os.path.exists(db):
            os.unlink(db)
        cr("cosmic-ray", "init", cfg1, db, cwd=repo)
        cr("cr-filter-operators", db, cfg1, cwd=repo)
    if not rerun and mcfg.get("sample", 1.0) < 1.0:
        sample_pending(db, module, mcfg["sample"])
    cr("cosmic-ray", "baseline", cfg1, cwd=repo)
    cr("cosmic-ray", "exec", cfg1, db, cwd=repo)
    timing["pass1_done"] = time.time()
    pass1 = survivors(db)
    if pass1 and mcfg.get("more") and not no_more:
        cfg2 = os.path.join(lane_dir, f"{module}-notes.toml")
        write_session_config(cfg2, module, test_command(sock, mcfg["tests"] + mcfg["more"]), cfg)
        with sqlite3.connect(db) as c:
            c.executemany("delete from work_results where job_id = ?", [(j,) for j in pass1])
        cr("cosmic-ray", "exec", cfg2, db, cwd=repo)
    timing["rerun_finished" if rerun else "finished"] = time.time()
    timing["pass1_survivors"] = pass1
    with open(info_path, "w") as f:
        json.dump(timing, f, indent=1)


def run_lane(lane, modules, cfg, work, rerun=False, resume=False, no_more=False):
    lane_dir = os.path.join(work, f"lane-{modules[0]}")     # unique even across concurrent runs
    os.makedirs(lane_dir, exist_ok=True)
    repo = copy_repo(lane_dir)
    sock = os.path.join(lane_dir, "server.sock")
    server = start_server(repo, sock)
    try:
        for module in modules:
            run_module(module, lane_dir, repo, sock, cfg, rerun, resume, no_more)
    finally:
        server.terminate()
        server.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modules", nargs="*", help="modules to run (default: all in config.toml)")
    ap.add_argument("--lanes", type=int, default=2, help="modules run in this many parallel lanes")
    ap.add_argument("--rerun", action="store_true", help="run only the survivors of the last run again")
    ap.add_argument("--resume", action="store_true", help="continue interrupted sessions (mutants without a result)")
    ap.add_argument("--no-more", action="store_true", help="pass 1 only (survivors do not meet the slower 'more')")
    ap.add_argument("--report-only", action="store_true", help="only rewrite REPORT.md from the sessions")
    args = ap.parse_args()
    cfg = load_config()
    modules = args.modules or list(cfg["modules"])
    if not args.report_only:
        # largest first, each to the lane with the least work so far
        sizes = {m: cfg["modules"][m].get("weight", 1) for m in modules}
        lanes = [[] for _ in range(max(1, args.lanes))]
        for m in sorted(modules, key=lambda m: -sizes[m]):
            min(lanes, key=lambda l: sum(sizes[x] for x in l)).append(m)
        # lanes as threads: each only waits for its subprocesses
        threads = [threading.Thread(target=run_lane, args=(i, mods, cfg, WORK, args.rerun, args.resume, args.no_more)) for i, mods in enumerate(lanes) if mods]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    import report
    report.write(cfg)


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    main()
