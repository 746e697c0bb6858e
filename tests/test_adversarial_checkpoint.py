"""Damaged, forged and hostile checkpoints: each loads correctly or raises CheckpointError.

A real trainer checkpoint (stopped inside an epoch, so every entry is in use)
is changed in one place -- an entry replaced, removed or retyped, bytes
flipped, cut or inserted, the zip directory forged -- and read through every
public reader: ``load_model``, ``load_trainer_state``, ``trainer_config`` and
``run_info``.  Any other exception is a traceback a user would see and fails
the test, naming the input.  A load that succeeds must be a *correct* one:
finite parameters equal to what the file holds, and a resumed trainer that can
finish its epoch.  Every test prints how many inputs it tried and what became
of them ("tried N: loaded a, refused b").
"""
import collections
import copy
import io
import json
import os
import pickle
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from numpyvae import VAE, CheckpointError, NumpyVAEError
from numpyvae import checkpoint as ckpt
from numpyvae.train import Trainer
from numpyvae.vae import check_config

X = (np.random.default_rng(0).uniform(size=(20, 6)) < 0.5).astype(np.float64)
READERS = ("load_model", "load_trainer_state", "trainer_config", "run_info")


def new_trainer():
    return Trainer(VAE(6, [5], 2, seed=1), X, batch_size=8, progress=False, verbose=False, seed=3)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A trainer checkpoint written one batch into its second epoch: (path, bytes, arrays)."""
    t = new_trainer()
    t.run(1)
    t.perm, t.batch_index = t.rng.permutation(len(X)), 0     # what Trainer._run_epoch does first
    t.train_step(X[t.perm[:8]])
    t.batch_index, t.epoch_count = 1, 8
    t.sums = {"objective": 30.0, "neg_elbo": 30.0, "recon": 25.0, "kl": 5.0}
    path = tmp_path_factory.mktemp("good") / "checkpoint.npz"
    t.save(path, {"dataset": "toy", "epochs": 3})
    data = path.read_bytes()
    return path, data, dict(np.load(path, allow_pickle=False))


class Tally:
    """Counts the outcomes of the inputs of one test; fails on the first traceback."""

    def __init__(self, name):
        self.name, self.counts, self.inputs = name, collections.Counter(), 0

    def read_all(self, path, label):
        """Every reader on ``path``: a correct load or CheckpointError, nothing else."""
        self.inputs += 1
        for reader in READERS:
            try:
                with np.errstate(all="ignore"):
                    _read(reader, path)
            except CheckpointError as exc:
                assert str(path) in str(exc), f"{label}, {reader}: the message does not name the file: {exc}"
                self.counts["refused"] += 1
            except Exception as exc:   # noqa: BLE001 -- exactly what must not happen
                pytest.fail(f"{label}, {reader}: ours {type(exc).__name__}: {exc} vs expected a correct load "
                            "or CheckpointError")
            else:
                self.counts["loaded"] += 1

    def report(self):
        print(f"{self.name}: tried {self.inputs} inputs x {len(READERS)} readers: loaded {self.counts['loaded']}, "
              f"refused with CheckpointError {self.counts['refused']}, other exceptions 0")


def _read(reader, path):
    """One reader; a load that succeeds is checked to be a correct one."""
    if reader == "load_model":
        model = ckpt.load_model(path)
        stored = dict(np.load(path, allow_pickle=False))
        for name, p in model.params.items():
            assert np.all(np.isfinite(p)), f"load_model: parameter {name} is not finite"
            np.testing.assert_array_equal(p, stored[f"param/{name}"].astype(p.dtype), err_msg=f"load_model: {name}")
    elif reader == "load_trainer_state":
        t = ckpt.load_trainer_state(path, new_trainer())
        epoch = t.epoch
        try:
            t.run(epoch + 1)                       # the resumed run finishes its epoch
        except NumpyVAEError:                      # a forged but valid state may diverge: said so, not a traceback
            return
        assert t.epoch == epoch + 1 and all(np.all(np.isfinite(p)) for p in t.model.params.values())
    elif reader == "trainer_config":
        model_config, config, info = ckpt.trainer_config(path)
        check_config(**model_config)               # a valid VAE, and small enough to build here:
        if model_config["x_dim"] <= 100 and all(h <= 100 for h in model_config["hidden"]):
            try:                                   # it builds what it says (on 20 examples)
                Trainer(VAE(**model_config), np.zeros((20, model_config["x_dim"])), progress=False, verbose=False,
                        **config)
            except NumpyVAEError as exc:
                assert "batch_size: expected at most the 20" in str(exc), f"trainer_config returned a bad config: {exc}"
        assert isinstance(info, dict)
    else:
        assert isinstance(ckpt.run_info(path), dict)


def _write(tmp_path, arrays, name="forged.npz"):
    path = tmp_path / name
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def test_the_unchanged_checkpoint_loads_everywhere(good, tmp_path):
    path, _, _ = good
    tally = Tally("unchanged")
    tally.read_all(path, "unchanged")
    tally.report()
    assert tally.counts == {"loaded": 4}, f"ours {dict(tally.counts)} vs expected 4 loads"


# ---- one entry replaced by a hand-picked bad value -------------------------------------------------

def _bad_values(arrays):
    """(label, key, value or None to delete) for every entry: the cases a forger or a bug would produce."""
    W = arrays["param/encoder.0.W"]
    model_config = json.loads(str(arrays["model_config"]))
    counters = json.loads(str(arrays["trainer_counters"]))
    history = json.loads(str(arrays["history"]))
    config = json.loads(str(arrays["trainer_config"]))
    text = lambda obj: np.array(json.dumps(obj))   # noqa: E731
    cases = [(f"version {v!r}", "version", v) for v in
             (None, np.array("2"), np.array(2.0), np.array([2]), np.array(True), np.array(3), np.array(-1),
              np.array(2**40))]
    cases += [("format missing", "format", None), ("format as bytes", "format", np.array(b"numpyvae-checkpoint")),
              ("format as number", "format", np.array(1))]
    for label, value in (("a list", [1, 2]), ("a string", "x"), ("null", None), ("a number", 3),
                         ("a 10^9-unit layer", {**model_config, "hidden": [10**9]}),
                         ("200000 layers", {**model_config, "hidden": [1] * 200000}),
                         ("x_dim 10^400", {**model_config, "x_dim": 10**400}), ("hidden '5'", {**model_config, "hidden": "5"}),
                         ("dtype int32", {**model_config, "dtype": "int32"}), ("dtype null", {**model_config, "dtype": None}),
                         ("z_dim 0", {**model_config, "z_dim": 0}), ("likelihood x", {**model_config, "likelihood": "x"}),
                         ("an unknown option", {**model_config, "seed": 5}), ("x_dim missing", {"hidden": [5]}),
                         ("x_dim true", {**model_config, "x_dim": True}), ("x_dim 7", {**model_config, "x_dim": 7})):
        cases.append((f"model_config {label}", "model_config", text(value)))
    cases += [("model_config x_dim NaN", "model_config", np.array('{"x_dim": NaN}')),
              ("model_config x_dim Infinity", "model_config", np.array('{"x_dim": Infinity}')),
              ("model_config 5000-digit number", "model_config", np.array('{"x_dim": ' + "9" * 5000 + "}")),
              ("model_config nested 10^5 deep", "model_config", np.array("[" * 100000)),
              ("model_config not JSON", "model_config", np.array("{x_dim: 6")),
              ("model_config as number array", "model_config", np.arange(3))]
    for v in (W.astype(np.int32), W.astype(bool), W.astype(np.complex64), W.astype(np.uint8),
              np.array(["a"] * W.size).reshape(W.shape), np.zeros(W.shape, dtype=[("a", "f4")]), W.astype(np.float16),
              W.astype(np.float64) * 1e300, np.full(W.shape, np.nan, np.float32), np.full(W.shape, -np.inf), W[:1], W.T,
              W.astype(">f4"), W.astype(np.longdouble), np.float32(1.0), None):
        cases.append((f"param/encoder.0.W {getattr(v, 'dtype', v)} {getattr(v, 'shape', '')}", "param/encoder.0.W", v))
    cases.append(("an extra parameter", "param/encoder.9.W", np.zeros((2, 2), np.float32)))
    slot, t = "optim/v/encoder.0.W", arrays["optim/t"]
    for v in (np.array(1.0), arrays[slot][0], np.full(arrays[slot].shape, np.inf, np.float32),
              arrays[slot].astype(np.float64) + 1e300, -arrays[slot] - 1, arrays[slot].astype(np.int64),
              arrays[slot].astype(np.complex64), None):
        cases.append((f"{slot} {getattr(v, 'dtype', v)} {getattr(v, 'shape', '')}", slot, v))
    cases += [("optim/m NaN", "optim/m/decoder.0.b", np.full(arrays["optim/m/decoder.0.b"].shape, np.nan, np.float32)),
              ("an optimizer slot of another optimizer", "optim/velocity/encoder.0.W", np.zeros(W.shape, np.float32))]
    cases += [(f"optim/t {v!r}", "optim/t", v) for v in
              (np.array(-1), np.array(float(t)), np.array([int(t)]), np.array(int(t) + 1), np.array(2**62), None)]
    cases += [(f"perm {label}", "perm", v) for label, v in
              (("of zeros", np.zeros(20, np.int64)), ("too short", np.arange(19)), ("float", np.arange(20.0)),
               ("2-D", np.arange(40).reshape(2, 20)), ("with a repeat", np.r_[np.arange(19), 0]),
               ("out of range", np.arange(1, 21)), ("negative", -np.arange(20)), ("missing", None),
               ("empty inside an epoch", np.array([], np.int64)))]
    for key, value in (("epoch", -1), ("epoch", 10**30), ("epoch", 1.5), ("epoch", True), ("epoch", 5),
                       ("step", 0), ("step", -3), ("batch_index", 99), ("batch_index", 3), ("epoch_count", 0),
                       ("epoch_count", 7), ("epoch_count", 20), ("sums", None), ("sums", {"objective": "a"}),
                       ("sums", {"objective": 1.0}), ("rng", None), ("rng", "x"),
                       ("rng", {"bit_generator": "PCG64", "state": {"state": 2**200, "inc": 3}, "has_uint32": 0, "uinteger": 0}),
                       ("rng", {"bit_generator": "PCG64", "state": {"state": -1, "inc": 2}, "has_uint32": 0, "uinteger": 0}),
                       ("rng", {"bit_generator": "PCG64", "state": {"state": 1, "inc": 1}, "has_uint32": 5, "uinteger": -1}),
                       ("rng", {"bit_generator": "MT19937", "state": {"key": [0] * 624, "pos": 0}}),
                       ("rng", {"bit_generator": "PCG64"})):
        c = copy.deepcopy(counters)
        if value is None:
            c.pop(key)
        else:
            c[key] = value
        cases.append((f"trainer_counters {key}={value!r:.50}", "trainer_counters", text(c)))
    cases += [("trainer_counters sums NaN", "trainer_counters",
               np.array(json.dumps(counters).replace('"objective": 30.0', '"objective": NaN'))),
              ("trainer_counters a list", "trainer_counters", text([1])), ("trainer_counters missing", "trainer_counters", None)]
    row = history[0]
    for label, value in (("a mapping", {}), ("a string", "x"), ("[1]", [1]), ("empty", []), ("two rows", [row, row]),
                         ("epoch 'a'", [{**row, "epoch": "a"}]), ("epoch 2", [{**row, "epoch": 2}]),
                         ("a text figure", [{**row, "train_objective": "abc"}]),
                         ("a true figure", [{**row, "train_kl": True}]), ("a list figure", [{**row, "seconds": [1]}])):
        cases.append((f"history {label}", "history", text(value)))
    cases += [("history with NaN", "history", np.array(json.dumps(history).replace('"beta": 1.0', '"beta": NaN'))),
              ("history missing", "history", None)]
    for key, value in (("lr", "x"), ("lr", -1), ("lr", 0), ("lr", None), ("batch_size", 0), ("batch_size", 21),
                       ("batch_size", 2.5), ("optimizer", "x"), ("estimator", ["mc"]), ("k", 0), ("binarize", 1),
                       ("beta", 1e308), ("warmup_epochs", -1), ("test_k", True), ("seed", -1), ("bogus", 1),
                       ("weight_decay", -0.5), ("weight_decay", "1"), ("weight_decay", 1e300)):
        cases.append((f"trainer_config {key}={value!r}", "trainer_config", text({**config, key: value})))
    cases += [("trainer_config a list", "trainer_config", text([])), ("trainer_config missing", "trainer_config", None),
              ("trainer_config lr Infinity", "trainer_config",
               np.array(json.dumps(config).replace('"lr": 0.001', '"lr": Infinity')))]
    cases += [(f"run_info {v}", "run_info", np.array(v)) for v in ("[]", "5", "null", '{"a": NaN}', "{")]
    cases += [("run_info missing", "run_info", None)]
    return cases


def test_every_entry_replaced_by_a_bad_value(good, tmp_path):
    _, _, arrays = good
    tally = Tally("bad values")
    for label, key, value in _bad_values(arrays):
        forged = dict(arrays)
        if value is None:
            forged.pop(key, None)
        else:
            forged[key] = value
        tally.read_all(_write(tmp_path, forged), label)
    tally.report()
    assert tally.inputs > 120 and tally.counts["refused"] > 0


def test_refusals_name_the_entry(good, tmp_path):
    """The silent wrong results of issue 11, each now a CheckpointError naming its cause."""
    _, _, arrays = good
    W = arrays["param/encoder.0.W"]
    counters = json.loads(str(arrays["trainer_counters"]))
    cases = {
        "param/encoder.0.W": (W.astype(np.int32), "has dtype int32, expected float"),
        "optim/v/encoder.0.W": (np.full(W.shape, np.inf, np.float32), "'v/encoder.0.W': contains NaN or inf"),
        "perm": (np.zeros(20, np.int64), "expected a permutation"),
        "model_config": (np.array(json.dumps({"x_dim": 6, "hidden": [10**9], "z_dim": 2})), "parameters, expected at most"),
        "trainer_counters": (np.array(json.dumps({**counters, "epoch_count": 0})), "examples seen"),
    }
    for key, (value, message) in cases.items():
        path = _write(tmp_path, {**arrays, key: value})
        readers = {"param": ("load_model", "load_trainer_state"), "model_config": ("load_model", "trainer_config")}
        for reader in readers.get(key.split("/")[0], ("load_trainer_state",)):
            with pytest.raises(CheckpointError) as info:
                _read(reader, path)
            assert message in str(info.value), f"{key}, {reader}: ours {info.value} vs expected to contain {message!r}"
    # a float64 value beyond float32's range is not loaded as inf into the float32 model
    path = _write(tmp_path, {**arrays, "param/decoder.0.W": arrays["param/decoder.0.W"].astype(np.float64) * 1e300})
    with pytest.raises(CheckpointError, match="beyond the range of the model's float32"):
        ckpt.load_model(path)


# ---- hypothesis over the contents ------------------------------------------------------------------

any_dtype = st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.int8, np.uint16, np.bool_,
                             np.complex64, "U3"])
any_array = st.one_of(arrays(any_dtype, array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)),
                      arrays(np.float32, (6, 5)), arrays(np.int64, (20,), elements=st.integers(-2, 25)))
json_value = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**30) | st.floats() | st.text(max_size=4),
                          lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                          max_leaves=12)


def _json_variant(arrays, key, data):
    """The JSON entry ``key`` with one of its fields (or, for a non-mapping, the whole) replaced by anything."""
    try:
        obj = json.loads(str(arrays[key]))
    except ValueError:                # "format" is plain text, not JSON: replaced whole
        obj = None
    value = data.draw(json_value, label="value")
    if isinstance(obj, dict) and obj:
        return np.array(json.dumps({**obj, data.draw(st.sampled_from(sorted(obj)), label="field"): value}))
    return np.array(json.dumps(value))


TALLIES = {}


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_hypothesis_over_contents(good, tmp_path, data):
    _, _, arrays = good
    tally = TALLIES.setdefault("contents", Tally("hypothesis over contents"))
    key = data.draw(st.sampled_from(sorted(arrays) + ["param/extra", "optim/extra"]), label="key")
    forged = dict(arrays)
    how = data.draw(st.sampled_from(["array", "json", "delete"]), label="how")
    if how == "delete":
        forged.pop(key, None)
    elif how == "json":
        forged[key] = _json_variant(arrays, key, data) if key in ckpt.TEXT_ENTRIES else \
            np.array(json.dumps(data.draw(json_value, label="value")))
    else:
        forged[key] = data.draw(any_array, label="value")
    tally.read_all(_write(tmp_path, forged, "hyp.npz"), f"{key} {how}")
    if tally.inputs % 20 == 0:
        tally.report()


# ---- bytes -------------------------------------------------------------------------------------------

def _byte_variants(data, n, seed):
    """n damaged copies of ``data``: bit flips, truncations, insertions, deletions at random offsets."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        b = bytearray(data)
        kind = ("flip", "truncate", "insert", "delete")[i % 4]
        if kind == "flip":
            for j in rng.integers(0, len(b), size=int(rng.integers(1, 5))):
                b[j] ^= 1 << int(rng.integers(0, 8))
        elif kind == "truncate":
            b = b[:int(rng.integers(0, len(b)))]
        elif kind == "insert":
            j = int(rng.integers(0, len(b)))
            b[j:j] = rng.integers(0, 256, size=int(rng.integers(1, 17))).astype(np.uint8).tobytes()
        else:
            j = int(rng.integers(0, len(b)))
            del b[j:j + int(rng.integers(1, 17))]
        yield f"{kind} #{i}", bytes(b)


def test_byte_level_corruption(good, tmp_path):
    _, data, _ = good
    tally = Tally("byte corruption")
    path = tmp_path / "damaged.npz"
    for label, damaged in _byte_variants(data, 160, seed=11):
        path.write_bytes(damaged)
        tally.read_all(path, label)
    tally.report()
    assert tally.counts["refused"] > tally.inputs       # most damage is noticed


def test_random_bytes_in_the_npy_headers(good, tmp_path):
    """Flips aimed at the headers of the members (where shapes and dtypes are declared)."""
    _, data, _ = good
    starts = [i for i in range(len(data)) if data.startswith(b"\x93NUMPY", i)]
    rng = np.random.default_rng(5)
    tally = Tally("header corruption")
    path = tmp_path / "header.npz"
    for i in range(60):
        b = bytearray(data)
        j = int(rng.choice(starts)) + int(rng.integers(0, 118))
        b[j] = int(rng.integers(0, 256))
        path.write_bytes(bytes(b))
        tally.read_all(path, f"header byte {j}")
    tally.report()


# ---- the zip directory forged --------------------------------------------------------------------

def _central_entries(data):
    """Offsets of the central directory records (signature PK\\x01\\x02)."""
    return [i for i in range(len(data)) if data.startswith(b"PK\x01\x02", i)]


def _patch(data, offset, fmt, value):
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, value)
    return bytes(b)


def test_forged_zip_directory(good, tmp_path):
    _, data, _ = good
    tally = Tally("forged zip directory")
    path = tmp_path / "zip.npz"
    entries = _central_entries(data)
    local = [i for i in range(len(data)) if data.startswith(b"PK\x03\x04", i)]
    variants = []
    for e in entries[:3] + entries[-2:]:
        variants += [("encrypted flag", _patch(data, e + 8, "<H", 1)),
                     ("compression 99", _patch(data, e + 10, "<H", 99)),
                     ("deflate on a stored member", _patch(data, e + 10, "<H", 8)),
                     ("bzip2 on a stored member", _patch(data, e + 10, "<H", 12)),
                     ("file size 2^32-1", _patch(data, e + 24, "<I", 2**32 - 1)),
                     ("compressed size 2^31", _patch(data, e + 20, "<I", 2**31)),
                     ("local header offset past the end", _patch(data, e + 42, "<I", len(data) + 10)),
                     ("local header offset 0", _patch(data, e + 42, "<I", 0)),
                     ("name length 60000", _patch(data, e + 28, "<H", 60000)),
                     ("crc zero", _patch(data, e + 16, "<I", 0))]
    for o in local[:4]:
        variants += [("local encrypted flag", _patch(data, o + 6, "<H", 1)),
                     ("local name length 0", _patch(data, o + 26, "<H", 0))]
    end = data.rfind(b"PK\x05\x06")
    variants += [("0 entries", _patch(data, end + 10, "<H", 0)), ("65535 entries", _patch(data, end + 10, "<H", 65535)),
                 ("directory offset 0", _patch(data, end + 16, "<I", 0)),
                 ("directory size 2^32-1", _patch(data, end + 12, "<I", 2**32 - 1))]
    for label, forged in variants:
        path.write_bytes(forged)
        tally.read_all(path, label)
    tally.report()
    assert tally.counts["refused"] > 0


def _npy_header(shape, dtype="<f8"):
    """The bytes of an .npy header declaring ``shape`` (and no data)."""
    from numpy.lib import format as npy
    buf = io.BytesIO()
    npy.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _zip(tmp_path, members, arrays=None, name="built.npz", compress=zipfile.ZIP_STORED):
    """A zip with the checkpoint's arrays (if given) plus raw ``members`` {name: bytes}."""
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", compression=compress) as zf:
        for key, value in (arrays or {}).items():
            buf = io.BytesIO()
            np.save(buf, value, allow_pickle=False)
            zf.writestr(key + ".npy", buf.getvalue())
        for member, raw in members.items():
            zf.writestr(member, raw)
    return path


def test_members_declaring_huge_arrays_are_refused_before_any_is_read(good, tmp_path):
    _, _, arrays = good
    tally = Tally("huge declarations")
    cases = {"75 GB parameter": {"param/encoder.0.W.npy": _npy_header((10**10 // 8 * 60, 1))},
             "2.9 GB in the directory's limit": {"optim/m/encoder.0.W.npy": _npy_header((2_900_000_000 // 8,))},
             "10^30 elements": {"perm.npy": _npy_header((10**15, 10**15), "<i8")},
             "huge text": {"model_config.npy": _npy_header((), "<U1000000000")}}
    for label, members in cases.items():
        forged = {k: v for k, v in arrays.items() if k + ".npy" not in members}
        path = _zip(tmp_path, members, forged)
        tracemalloc.start()
        tally.read_all(path, label)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 50e6, f"{label}: ours {peak / 1e6:.0f} MB allocated vs expected < 50 MB"
    # a zip bomb: 40 MB of zeros compressed to ~40 kB, declared honestly
    zeros = _npy_header((5_000_000,)) + bytes(40_000_000)
    forged = {k: v for k, v in arrays.items() if k != "optim/m/encoder.0.W"}
    path = _zip(tmp_path, {"optim/m/encoder.0.W.npy": zeros}, forged, "bomb.npz", zipfile.ZIP_DEFLATED)
    tracemalloc.start()
    with pytest.raises(CheckpointError, match="would expand"):
        ckpt.load_model(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50e6, f"zip bomb: ours {peak / 1e6:.0f} MB allocated vs expected < 50 MB"
    tally.report()


def test_recompressed_checkpoint_still_loads_and_bad_deflate_is_refused(good, tmp_path):
    _, _, arrays = good
    path = _zip(tmp_path, {}, arrays, "deflated.npz", zipfile.ZIP_DEFLATED)
    model = ckpt.load_model(path)                 # a checkpoint zipped again by hand is still a checkpoint
    np.testing.assert_array_equal(model.params["decoder.1.b"], arrays["param/decoder.1.b"])
    raw = bytearray(path.read_bytes())
    body = raw.find(b"NUMPY") + 200               # inside the first member's deflate stream
    raw[body:body + 8] = b"\xff" * 8
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="not a readable .npz file"):   # zlib.error, or a bad CRC
        ckpt.load_model(path)


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_non_npy_members_and_duplicates(good, tmp_path):
    _, _, arrays = good
    tally = Tally("odd members")
    for label, members in (("a text member", {"notes.txt": b"hello"}), ("a member without .npy", {"perm": b"\x93NUMPY"}),
                           ("a duplicate name", {"perm.npy": b"junk"}),
                           ("a directory", {"dir/": b""}), ("a path escaping", {"../../x.npy": _npy_header((1,)) + bytes(8)})):
        tally.read_all(_zip(tmp_path, members, arrays), label)
    tally.report()


# ---- pickle --------------------------------------------------------------------------------------

class _Payload:
    """Unpickling this would create the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_payload_never_runs(good, tmp_path):
    _, _, arrays = good
    marker = tmp_path / "PICKLE-RAN"
    evil = np.empty(1, dtype=object)
    evil[0] = _Payload(str(marker))
    tally = Tally("pickle payloads")
    for key in ("model_config", "param/encoder.0.W", "history", "trainer_counters", "run_info", "perm", "optim/t",
                "format", "version"):
        buf = io.BytesIO()
        np.save(buf, evil, allow_pickle=True)
        forged = {k: v for k, v in arrays.items() if k != key}
        tally.read_all(_zip(tmp_path, {key + ".npy": buf.getvalue()}, forged), f"pickle as {key}")
    # and a bare pickle file renamed .npz
    bare = tmp_path / "bare.npz"
    bare.write_bytes(pickle.dumps(_Payload(str(marker))))
    tally.read_all(bare, "a bare pickle")
    tally.report()
    assert not marker.exists(), "the pickle payload ran"
    assert tally.counts["loaded"] == 0, f"ours {tally.counts['loaded']} loads of a pickle-carrying file vs expected 0"


def test_not_a_file(tmp_path):
    tally = Tally("not a file")
    for label, path in (("a folder", tmp_path), ("missing", tmp_path / "nope.npz"), ("empty", tmp_path / "empty.npz")):
        if label == "empty":
            path.write_bytes(b"")
        tally.read_all(path, label)
    for bad in (None, 3, ["a.npz"]):
        with pytest.raises(CheckpointError, match="expected a file path"):
            ckpt.load_model(bad)
    tally.report()
    assert os.path.isdir(tmp_path)


def test_a_version_1_checkpoint_still_resumes_and_its_forgeries_are_refused(tmp_path):
    """The layout numpyvae 0.1 wrote (trainer_state, meta inside trainer_config, train_loss rows)."""
    t = new_trainer()
    t.run(1)
    arrays = {k: v for k, v in ckpt.model_arrays(t.model).items()}
    arrays["version"] = np.array(1)
    state = t.state()
    counters = {k: state["counters"][k] for k in ("epoch", "step", "batch_index", "epoch_count", "rng")}
    arrays["trainer_state"] = np.array(json.dumps(counters))
    arrays["trainer_config"] = np.array(json.dumps({**t.config, "meta": {"dataset": "toy", "epochs": 2}}))
    row = {("train_loss" if k == "train_objective" else k): v for k, v in state["history"][0].items()}
    arrays["history"] = np.array(json.dumps([row]))
    arrays["perm"] = np.array([], np.int64)
    arrays.update({f"optim/{k}": v for k, v in state["optimizer"].items()})
    path = _write(tmp_path, arrays, "v1.npz")
    resumed = ckpt.load_trainer_state(path, new_trainer())
    assert resumed.epoch == 1 and resumed.history[0]["train_objective"] == state["history"][0]["train_objective"]
    model_config, config, info = ckpt.trainer_config(path)
    assert info == {"dataset": "toy", "epochs": 2} and "meta" not in config, f"ours {info}, {config}"
    assert ckpt.run_info(path) == {"dataset": "toy", "epochs": 2}
    tally = Tally("version 1 forgeries")
    for label, key, value in (("mid-epoch", "trainer_state", np.array(json.dumps({**counters, "batch_index": 1}))),
                              ("meta a list", "trainer_config", np.array(json.dumps({**t.config, "meta": [1]}))),
                              ("rows not mappings", "history", np.array("[1]")),
                              ("trainer_state a list", "trainer_state", np.array("[]"))):
        tally.read_all(_write(tmp_path, {**arrays, key: value}, "v1-forged.npz"), f"v1 {label}")
    tally.report()
    assert tally.counts["refused"] >= 4


def test_writing_refuses_what_reading_would_refuse(tmp_path):
    """A checkpoint that could not be read back is never written: NaN or non-JSON run_info, wrong objects."""
    from numpyvae import InputError
    t = new_trainer()
    path = tmp_path / "c.npz"
    for run_info, message in (({"epochs": np.int64(3)}, "not JSON serializable"), ({"x": float("nan")}, "not JSON compliant"),
                              ([1], "expected a dict or None"), ("toy", "expected a dict or None")):
        with pytest.raises(InputError, match=message) as info:
            ckpt.save_trainer(path, t, run_info)
        assert str(info.value).startswith("run_info"), f"ours {info.value} vs expected to name run_info"
        assert not path.exists(), "a refused checkpoint was written"
    for model in ("model", None, t):
        with pytest.raises(InputError, match="model: expected a numpyvae VAE"):
            ckpt.save_model(path, model)
    with pytest.raises(InputError, match="trainer: expected a numpyvae Trainer"):
        ckpt.save_trainer(path, t.model)
    ckpt.save_trainer(path, t, {"dataset": "toy", "epochs": 2})
    assert ckpt.run_info(path) == {"dataset": "toy", "epochs": 2}
