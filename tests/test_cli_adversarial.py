"""The command line against bad arguments: one clear line and exit code 2, never a traceback.

Two parts: a table of hand-picked bad inputs, each with the words its message
must contain; and hypothesis composing random command lines from good and bad
values.  Each part prints how many inputs it tried and how they ended
(see them with ``pytest -s``).
"""
import collections
import functools
import itertools
import os
import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numpyvae import checkpoint as ckpt
from numpyvae import cli
from numpyvae.cli import build_parser, main

TINY = ["--hidden", "8", "--batch-size", "64", "--no-plots", "-q"]


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """A trained run, a garbage file, an ordinary file and a folder to point options at."""
    root = tmp_path_factory.mktemp("adversary")
    run = root / "run"
    assert main(["train", "--epochs", "1", "--out", str(run), *TINY]) == 0
    (root / "garbage.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (root / "a_file").write_text("not a folder")
    model_only = root / "model_only.npz"
    ckpt.save_model(model_only, ckpt.load_model(run / "checkpoint.npz"))
    return {"root": root, "ckpt": run / "checkpoint.npz", "garbage": root / "garbage.npz",
            "file": root / "a_file", "model_only": model_only, "missing": root / "missing.npz"}


def outcome(capsys, argv):
    """(exit code, stdout, stderr) of one command line run in this process; exceptions are failures."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    except BaseException as exc:          # a traceback: report the command line that caused it
        raise AssertionError(f"{shlex.join(map(str, argv))}: raised {type(exc).__name__}: {exc}") from exc
    out, err = capsys.readouterr()
    return code, out, err


def check_refusal(argv, code, err, words):
    where = shlex.join(map(str, argv))
    assert code == 2, f"{where}: ours exit {code} vs expected 2; stderr {err!r}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0], f"{where}: ours {err!r} vs expected one error line"
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], f"{where}: {word!r} missing from {lines[0]!r}"


# every row: a command line (with {names} from the `place` fixture) and words its one error line must hold
BAD = [
    ("train --z-dim 0", ["--z-dim", ">= 1", "'0'"]),
    ("train --z-dim two", ["--z-dim", "'two'"]),
    ("train --batch-size 0", ["--batch-size", ">= 1"]),
    ("train --batch-size -3", ["--batch-size"]),
    ("train --batch-size 100000 --epochs 1 --no-plots --out {root}/big", ["--batch-size", "at most the 1397"]),
    ("train --hidden 0", ["--hidden", ">= 1"]),
    ("train --hidden", ["--hidden", "expected at least one"]),
    ("train --seed -1", ["--seed", ">= 0"]),
    ("train --seed 1.5", ["--seed", "'1.5'"]),
    ("train --epochs -1", ["--epochs", ">= 0"]),
    ("train -k 0", ["-k", "from 1 to 1000"]),
    ("train -k 1001", ["-k", "from 1 to 1000"]),
    ("train --test-k 0", ["--test-k"]),
    ("train --lr 0", ["--lr", "> 0"]),
    ("train --lr nan", ["--lr", "finite"]),
    ("train --lr inf", ["--lr", "finite"]),
    ("train --lr -1e-3", ["--lr"]),
    ("train --beta -1", ["--beta", ">= 0"]),
    ("train --beta nan", ["--beta"]),
    ("train --warmup-epochs -2", ["--warmup-epochs"]),
    ("train --dataset cifar", ["--dataset", "invalid choice"]),
    ("train --estimator exact", ["--estimator", "invalid choice"]),
    ("train --dtype float16", ["--dtype"]),
    ("train --out ''", ["--out", "empty"]),
    ("train --out {file} --epochs 1", ["--out", "is a file"]),
    ("train --out {file}/sub --epochs 1", ["--out", "a part of the path is a file"]),
    ("train --data-dir ''", ["--data-dir", "empty"]),
    ("train --gaussian-mean sigmoid --epochs 1 --no-plots --out {root}/gm", ["--gaussian-mean", "gaussian"]),
    ("train --binarize dynamic --likelihood gaussian --epochs 1 --no-plots --out {root}/bz", ["binarize"]),
    ("train --resume {missing}", ["no such file"]),
    ("train --resume {garbage}", ["garbage.npz", "not a readable .npz"]),
    ("train --resume {model_only}", ["model only", "no trainer state"]),
    ("train --resume {root}", ["checkpoint"]),
    ("train --resume {ckpt} --z-dim 5", ["--z-dim 5", "the run has 2", "keeps its model"]),
    ("train --resume {ckpt} --hidden 8 9", ["--hidden 8 9", "the run has [8]"]),
    ("train --resume {ckpt} --lr 0.5 --estimator iwae", ["--lr 0.5", "--estimator iwae"]),
    ("train --resume {ckpt} --dataset mnist", ["--dataset mnist", "the run has digits"]),
    ("train --resume {ckpt} --seed 7", ["--seed 7", "the run has 0"]),
    ("train --resume {ckpt} --batch-size 8", ["--batch-size 8", "the run has 64"]),
    ("train --resume {ckpt} --out {file}", ["--out", "is a file"]),
    ("train --resume {ckpt} --out ''", ["--out", "empty"]),
    ("evaluate {missing}", ["no such file"]),
    ("evaluate {garbage}", ["not a readable .npz"]),
    ("evaluate {ckpt} -k 0", ["-k", "from 1 to 10000"]),
    ("evaluate {ckpt} -k 99999999999", ["-k"]),
    ("evaluate {ckpt} --log-marginal -5", ["--log-marginal", "from 0 to 1000000"]),
    ("evaluate {ckpt} --seed -1", ["--seed"]),
    ("evaluate {ckpt} --dataset mnist", ["--dataset", "784 pixels", "trained on 64", "(digits)"]),
    ("evaluate {ckpt} --dataset frey-face", ["--dataset", "560 pixels"]),
    ("evaluate {model_only}", ["--dataset", "does not say which dataset"]),
    ("evaluate {ckpt} --binarize maybe", ["--binarize", "invalid choice"]),
    ("evaluate ''", ["checkpoint", "empty"]),
    ("evaluate {root}/nul\0.npz", ["checkpoint", "NUL"]),
    ("sample {ckpt} --out s\0.png", ["--out", "NUL"]),
    ("train --out {root}/nul\0 --epochs 1", ["--out", "NUL"]),
    ("train --out {root}/" + "n" * 300 + " --epochs 1", ["--out", "cannot create it", "name too long"]),
    ("sample {ckpt} --out ''", ["--out", "empty"]),
    ("sample {ckpt} --out {root}", ["--out", "is a folder"]),
    ("sample {ckpt} --out {file}/s.png", ["--out", "is a file"]),
    ("sample {ckpt} --n 0", ["--n", "from 1 to 4096"]),
    ("sample {ckpt} --n 5000", ["--n", "from 1 to 4096"]),
    ("sample {ckpt} --n 1e9", ["--n"]),
    ("sample {ckpt} --seed -2", ["--seed"]),
    ("sample {missing}", ["no such file"]),
    ("sample {garbage}", ["not a readable .npz"]),
    ("", ["required"]),
    ("fly", ["invalid choice"]),
    ("train --no-such-option", ["unrecognized arguments"]),
]


def test_every_bad_argument_gets_one_clear_line(place, capsys):
    names = {key: str(value) for key, value in place.items()}
    counts = collections.Counter()
    for template, words in BAD:
        argv = shlex.split(template.format(**names))
        code, _, err = outcome(capsys, argv)
        check_refusal(argv, code, err, words)
        counts[argv[0] if argv else "(none)"] += 1
    # nothing refused may have touched the run it pointed at
    assert ckpt.load_model(place["ckpt"]).z_dim == 2
    print(f"\n{len(BAD)} bad command lines, all refused with one line and exit code 2: {dict(counts)}")


def test_options_are_used_as_typed_not_replaced_by_defaults(tmp_path, capsys):
    """`--z-dim 1` and `--batch-size 1397` reach the model and trainer (no `args.x or default`)."""
    code, out, err = outcome(capsys, ["train", "--z-dim", "1", "--batch-size", "1397", "--epochs", "1",
                                      "--hidden", "8", "--no-plots", "--out", tmp_path])
    assert code == 0, err
    _, config, _ = ckpt.trainer_config(tmp_path / "checkpoint.npz")
    z_dim = ckpt.load_model(tmp_path / "checkpoint.npz").z_dim
    assert (z_dim, config["batch_size"]) == (1, 1397), f"ours z_dim {z_dim}, batch {config['batch_size']}"
    assert "(1 steps)" in out, out


def test_epochs_zero_says_what_it_wrote_and_never_rewrites_a_run(tmp_path, capsys):
    code, out, _ = outcome(capsys, ["train", "--epochs", "0", "--out", tmp_path, *TINY])
    assert code == 0 and "trained 0 epochs: the model is as initialised, untrained" in out, out
    assert f"wrote checkpoint.npz to {tmp_path}" in out and os.listdir(tmp_path) == ["checkpoint.npz"], \
        f"ours {out!r}, files {os.listdir(tmp_path)}"
    assert outcome(capsys, ["train", "--resume", tmp_path / "checkpoint.npz", "--epochs", "2", "-q", "--no-plots"])[0] == 0
    before = {f: (tmp_path / f).read_bytes() for f in os.listdir(tmp_path)}
    for epochs in ("0", "2"):
        code, out, _ = outcome(capsys, ["train", "--resume", tmp_path / "checkpoint.npz", "--epochs", epochs])
        assert code == 0 and "nothing to train" in out and "no file written" in out, out
    assert {f: (tmp_path / f).read_bytes() for f in os.listdir(tmp_path)} == before, "a no-op rewrote the run"
    code, _, err = outcome(capsys, ["train", "--epochs", "0", "--out", tmp_path, *TINY])
    check_refusal(["train", "--epochs", "0"], code, err, ["already holds a run"])


def test_resume_applies_epochs_data_dir_and_out(place, tmp_path, capsys):
    data_dir = tmp_path / "nowhere"
    code, _, err = outcome(capsys, ["train", "--resume", place["ckpt"], "--data-dir", data_dir, "--epochs", "2",
                                    "--out", tmp_path / "copy", "-q"])
    assert code == 2 and "nowhere" in err, f"--data-dir was not used: {err!r}"
    code, out, err = outcome(capsys, ["train", "--resume", place["ckpt"], "--epochs", "2", "--out", tmp_path / "copy",
                                      "--z-dim", "2", "--hidden", "8", "-q", "--no-plots"])
    assert code == 0 and "trained from epoch 1 to 2" in out, err
    assert ckpt.run_info(tmp_path / "copy" / "checkpoint.npz")["epochs"] == 2
    assert ckpt.run_info(place["ckpt"])["epochs"] == 1, "resuming into another --out changed the original"


def test_every_help_shows_the_defaults_and_version(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices            # {name: sub-parser}
    missing = []
    for name, sub in commands.items():
        text = " ".join(sub.format_help().split())
        for action in sub._actions:
            if action.default in (None, False, "==SUPPRESS==") or action.dest == "help":
                continue
            if f"(default: {action.default})" not in text:
                missing.append(f"{name} {action.option_strings}")
        for action in sub._actions:                                  # per-dataset defaults are spelled out
            if action.default is None and action.dest in ("hidden", "z_dim", "epochs", "batch_size"):
                assert "default per dataset: digits" in (action.help or ""), f"{name} {action.dest}"
    assert not missing, f"options whose --help hides the default: {missing}"
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("numpyvae 0.")


# ---- random command lines ------------------------------------------------------------------------

VALUES = {
    "--z-dim": ["0", "-1", "1", "3", "x", "1e2", "99999999999999"],
    "--hidden": ["0", "4", "-3", "4 4", "abc", "1e9"],
    "--batch-size": ["0", "1000", "64", "100000", "-5", "1.5"],
    "-k": ["0", "1", "2", "1001", "nan"],
    "--lr": ["0", "-1", "nan", "inf", "1e-3", "1e300", "abc", "1e-320"],
    "--beta": ["-1", "0", "1", "1e308", "nan", "0.5"],
    "--warmup-epochs": ["-1", "0", "1.5", "inf", "1e300"],
    "--seed": ["-1", "0", "1", "1180591620717411303424", "x"],
    "--binarize": ["none", "dynamic", "threshold", "bad"],
    "--likelihood": ["gaussian", "bernoulli", "poisson"],
    "--gaussian-mean": ["identity", "sigmoid", "tanh"],
    "--estimator": ["analytic", "mc", "iwae", "score", "stl", "nope"],
    "--optimizer": ["adam", "sgd", "adagrad", "lbfgs"],
    "--activation": ["relu", "tanh", "gelu"],
    "--dtype": ["float32", "float64", "float16"],
    "--test-k": ["0", "1", "3", "10001"],
    "--dataset": ["digits", "cifar", ""],
    "--data-dir": ["", "{missing}", "{file}"],
    "--resume": ["{ckpt}", "{missing}", "{garbage}", "{model_only}", "{root}", ""],
}
FLAGS = ["--force", "--no-progress", "--quiet", "--no-plots"]
EVALUATE = {"-k": ["0", "1", "3", "10001", "x"], "--log-marginal": ["-1", "0", "20", "y"],
            "--workers": ["0", "1", "2", "257", "w"],
            "--binarize": ["none", "dynamic", "odd"], "--seed": ["-3", "0", "5"], "--dataset": ["digits", "mnist", "x"]}
SAMPLE = {"--n": ["0", "1", "9", "5000", "-1", "z"], "--seed": ["-1", "0", "12"],
          "--out": ["", "{root}", "{file}/x.png", "{fresh}/s.png", "{fresh}.png"]}


# the profile's example count (25 by default; NUMPYVAE_HYPOTHESIS=stress: 400), scaled per command
EXAMPLES = settings.default.max_examples


@functools.lru_cache(maxsize=None)
def _cached_load(name, data_dir, progress=None):
    return _real_load(name, data_dir, progress)


_real_load = cli._load_data


def command_lines(options, flags=(), max_options=6):
    """A strategy: a list of (option, value) pairs drawn from ``options``, plus some flags."""
    pairs = st.lists(st.sampled_from(sorted(options)).flatmap(
        lambda opt: st.tuples(st.just(opt), st.sampled_from(options[opt]))), max_size=max_options)
    return st.tuples(pairs, st.lists(st.sampled_from(flags), unique=True, max_size=len(flags)) if flags else st.just([]))


def test_random_command_lines_end_cleanly(place, capsys, monkeypatch, tmp_path):
    """Hypothesis composes train / evaluate / sample command lines from good and bad values.

    Every one ends with exit code 0 (and a result that matches what was asked)
    or 2 with one error line; none with a traceback.  Training is kept to at
    most one epoch of a tiny network, and the data are loaded once.
    """
    monkeypatch.setattr(cli, "_load_data", _cached_load)
    monkeypatch.chdir(tmp_path)                  # `sample` without --out writes samples.png here
    counter = itertools.count()
    tally = collections.Counter()
    names = {key: str(value) for key, value in place.items()}

    def fill(value):
        return value.format(fresh=str(tmp_path / f"fresh{next(counter)}"), **names)

    def run(argv):
        code, out, err = outcome(capsys, argv)
        tally[(argv[0], code)] += 1
        if code == 2:
            lines = err.strip().splitlines()
            assert lines and "error:" in lines[-1] and "Traceback" not in err, f"{shlex.join(argv)}: {err!r}"
        else:
            assert code == 0, f"{shlex.join(argv)}: ours exit {code}: {err[-400:]!r}"
        return out

    @settings(max_examples=5 * EXAMPLES)
    @given(command_lines(VALUES, FLAGS), st.sampled_from(["0", "1", "-1", "x"]))
    def train(line, epochs):
        pairs, flags = line
        argv = ["train", "--epochs", epochs, "--no-plots", "--out", fill("{fresh}"), *flags]
        if not {"--hidden", "--resume"} & {option for option, _ in pairs}:
            argv += ["--hidden", "4"]                         # a tiny network, unless the line names its own
        for option, value in pairs:
            argv += [option, *([fill(value)] if option != "--hidden" else fill(value).split() or [""])]
        out = run(argv)
        asked = dict(pairs)
        if "trained" in out and "--resume" not in asked:      # a new run: the model is what was typed
            model = ckpt.load_model(argv[argv.index("--out") + 1] + "/checkpoint.npz")
            last = {o: v for o, v in pairs}
            if "--z-dim" in last:
                assert model.z_dim == int(last["--z-dim"]), f"{shlex.join(argv)}: ours z_dim {model.z_dim}"

    @settings(max_examples=2 * EXAMPLES)
    @given(command_lines(EVALUATE), st.sampled_from(["{ckpt}", "{model_only}", "{garbage}"]))
    def evaluate(line, path):
        pairs, _ = line
        run(["evaluate", fill(path), *[fill(x) for pair in pairs for x in pair]])

    @settings(max_examples=2 * EXAMPLES)
    @given(command_lines(SAMPLE), st.sampled_from(["{ckpt}", "{model_only}", "{missing}"]))
    def sample(line, path):
        pairs, _ = line
        run(["sample", fill(path), *[fill(x) for pair in pairs for x in pair]])

    train()
    evaluate()
    sample()
    total = sum(tally.values())
    print(f"\n{total} random command lines: " + ", ".join(f"{cmd} exit {code}: {n}"
                                                         for (cmd, code), n in sorted(tally.items())))
    assert {code for _, code in tally} <= {0, 2}
