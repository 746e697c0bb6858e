"""Conv2d, ConvTranspose2d, Flatten and Reshape against independent truths.

* the definition (eq. C1 of derivations/12-convolution.md) as plain loops, on small shapes with
  stride, padding, rectangular kernels, 1/3/5 channels and batch 1;
* scipy.signal.correlate for stride 1;
* the adjoint identity <Conv(x), y> = <x, ConvT(y)> with shared weights, to float64 precision;
* centred differences for x, W and b (relative error < 1e-7);
* chunked columns give the same numbers as one chunk; bad shapes are refused by name.
"""
import itertools

import numpy as np
import pytest

from numpyvae import conv as conv_module
from numpyvae.conv import Conv2d, ConvTranspose2d
from numpyvae.errors import InputError
from numpyvae.gradcheck import TOL, check_layer
from numpyvae.layers import Flatten, Reshape

# (N, C, H, W, F, kernel, stride, padding): strides, paddings, rectangular kernels, channels 1/3/5, batch 1
CASES = [
    (1, 1, 5, 5, 1, 3, 1, 0),
    (2, 3, 6, 5, 2, (2, 3), 1, 1),
    (1, 5, 7, 6, 3, 3, 2, 1),
    (2, 3, 8, 8, 4, 4, 2, 1),
    (3, 1, 9, 7, 5, (3, 2), 3, 0),
    (1, 5, 6, 6, 1, (1, 3), 2, 0),
    (2, 3, 5, 7, 2, 3, 2, 2),
]


def conv_by_definition(x, W, b, stride, padding):
    """out[n, f, i, j] = b[f] + sum_{c,u,v} W[f,c,u,v] xp[n, c, s i + u, s j + v], written as loops."""
    N, C, H, Wd = x.shape
    F, _, kh, kw = W.shape
    xp = np.zeros((N, C, H + 2 * padding, Wd + 2 * padding))
    xp[:, :, padding:padding + H, padding:padding + Wd] = x
    Ho, Wo = (H + 2 * padding - kh) // stride + 1, (Wd + 2 * padding - kw) // stride + 1
    out = np.zeros((N, F, Ho, Wo))
    for n, f, i, j in itertools.product(range(N), range(F), range(Ho), range(Wo)):
        total = b[f]
        for c, u, v in itertools.product(range(C), range(kh), range(kw)):
            total += W[f, c, u, v] * xp[n, c, stride * i + u, stride * j + v]
        out[n, f, i, j] = total
    return out


def conv_transpose_by_definition(x, W, b, stride, padding, output_padding=0):
    """Each input pixel spreads W[c, f] into the output: out[n, f, s i + u - p, s j + v - p] += x[n,c,i,j] W[c,f,u,v]."""
    N, C, H, Wd = x.shape
    _, F, kh, kw = W.shape
    Ho, Wo = (H - 1) * stride - 2 * padding + kh + output_padding, (Wd - 1) * stride - 2 * padding + kw + output_padding
    out = np.zeros((N, F, Ho, Wo)) + b[None, :, None, None]
    for n, c, i, j, f, u, v in itertools.product(range(N), range(C), range(H), range(Wd), range(F), range(kh), range(kw)):
        r, q = stride * i + u - padding, stride * j + v - padding
        if 0 <= r < Ho and 0 <= q < Wo:
            out[n, f, r, q] += x[n, c, i, j] * W[c, f, u, v]
    return out


def _assert_close(ours, expected, what, tol=1e-12):
    err = np.abs(ours - expected)
    i = np.unravel_index(np.argmax(err), err.shape)
    assert ours.shape == expected.shape, f"{what}: ours shape {ours.shape} vs expected {expected.shape}"
    assert err[i] <= tol * max(1.0, np.abs(expected).max()), \
        f"{what}: ours {ours[i]:.15g} vs expected {expected[i]:.15g} at index {i}"


def _layer(cls, C, F, kernel, stride, padding, seed=0, **kw):
    layer = cls(C, F, kernel, stride, padding, rng=np.random.default_rng(seed), dtype=np.float64, **kw)
    layer.b[...] = np.random.default_rng(seed + 1).standard_normal(layer.b.shape)
    return layer


@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv2d_forward_equals_the_definition(case):
    N, C, H, W, F, kernel, stride, padding = case
    layer = _layer(Conv2d, C, F, kernel, stride, padding)
    x = np.random.default_rng(2).standard_normal((N, C, H, W))
    _assert_close(layer.forward(x), conv_by_definition(x, layer.W, layer.b, stride, padding), f"Conv2d{case}")


@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv_transpose2d_forward_equals_the_definition(case):
    N, C, H, W, F, kernel, stride, padding = case
    layer = _layer(ConvTranspose2d, C, F, kernel, stride, padding)
    x = np.random.default_rng(3).standard_normal((N, C, H, W))
    _assert_close(layer.forward(x), conv_transpose_by_definition(x, layer.W, layer.b, stride, padding),
                  f"ConvTranspose2d{case}")


def test_conv_transpose2d_output_padding_equals_the_definition():
    layer = _layer(ConvTranspose2d, 2, 3, 3, 2, 1, output_padding=1)
    x = np.random.default_rng(4).standard_normal((2, 2, 4, 3))
    _assert_close(layer.forward(x), conv_transpose_by_definition(x, layer.W, layer.b, 2, 1, 1), "output_padding=1")


@pytest.mark.parametrize("C,F,kernel,padding", [(1, 1, 3, 0), (3, 2, (2, 4), 1), (5, 4, 3, 2)])
def test_conv2d_stride_1_equals_scipy_correlate(C, F, kernel, padding):
    signal = pytest.importorskip("scipy.signal", reason="scipy is in the [test] extra")
    layer = _layer(Conv2d, C, F, kernel, 1, padding)
    x = np.random.default_rng(5).standard_normal((2, C, 7, 6))
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    # a 3-D correlation over (C, H, W) in mode "valid" sums over the channels: one output map per filter
    expected = np.stack([np.stack([signal.correlate(xp[n], layer.W[f], mode="valid")[0] + layer.b[f]
                                   for f in range(F)]) for n in range(2)])
    _assert_close(layer.forward(x), expected, "Conv2d vs scipy.signal.correlate")


def _one_output_padding(case):
    N, C, H, W, F, kernel, stride, padding = case
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    Ho, Wo = (H + 2 * padding - kh) // stride + 1, (W + 2 * padding - kw) // stride + 1
    return H - ((Ho - 1) * stride - 2 * padding + kh) == W - ((Wo - 1) * stride - 2 * padding + kw)


# the adjoint needs one output_padding for both axes: the cases where height and width agree on it
ADJOINT_CASES = [case for case in CASES if _one_output_padding(case)]


def test_the_adjoint_cases_cover_stride_and_padding():
    assert len(ADJOINT_CASES) >= 5 and {c[6] for c in ADJOINT_CASES} >= {1, 2} and {c[7] for c in ADJOINT_CASES} >= {0, 1}


@pytest.mark.parametrize("case", ADJOINT_CASES, ids=str)
def test_adjoint_identity(case):
    """<Conv(x), y> = <x, ConvT(y)>: ConvT with Conv's weights (C and F swapped) is Conv's adjoint."""
    N, C, H, W, F, kernel, stride, padding = case
    conv = _layer(Conv2d, C, F, kernel, stride, padding)
    conv.b[...] = 0
    kh, kw = conv.kernel
    # the input sizes a strided conv maps to the same output differ by up to stride - 1: output_padding picks H, W
    Ho, Wo = conv.output_shape((C, H, W))[1:]
    op = H - ((Ho - 1) * stride - 2 * padding + kh)
    convt = ConvTranspose2d(F, C, kernel, stride, padding, output_padding=op, dtype=np.float64)
    convt.W[...] = conv.W                     # Conv2d's W is (F, C, kh, kw): ConvT(F -> C) reads it as (in, out, ...)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((N, C, H, W))
    y = rng.standard_normal((N, F, Ho, Wo))
    lhs, rhs = np.vdot(conv.forward(x), y), np.vdot(x, convt.forward(y))
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs)), f"ours <x, ConvT(y)> = {rhs!r} vs expected <Conv(x), y> = {lhs!r}"
    # and ConvT's forward is Conv's input-gradient: backward(y) of the conv
    conv.forward(x)
    _assert_close(convt.forward(y), conv.backward(y), "ConvT(y) vs Conv2d.backward(y)")


@pytest.mark.parametrize("cls", [Conv2d, ConvTranspose2d])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradients_by_centred_differences(cls, case):
    N, C, H, W, F, kernel, stride, padding = case
    layer = _layer(cls, C, F, kernel, stride, padding, seed=7)
    x = np.random.default_rng(8).standard_normal((N, C, H, W))
    checks = check_layer(layer, x, np.random.default_rng(9))
    assert [c.name for c in checks] == ["x", "W", "b"]
    for c in checks:
        assert c.error < TOL, f"{cls.__name__}{case}: {c}"


@pytest.mark.parametrize("cls", [Conv2d, ConvTranspose2d])
def test_chunked_columns_give_the_same_numbers(cls, monkeypatch):
    layer = _layer(cls, 3, 4, 3, 2, 1, seed=10)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((5, 3, 8, 7))
    out, cache = layer.call(x)
    g = rng.standard_normal(out.shape)
    grads = {k: np.zeros_like(v) for k, v in layer.params.items()}
    dx = layer.call_backward(g, cache, grads)
    monkeypatch.setattr(conv_module, "MAX_COLS", 60)          # one example per chunk
    assert len(conv_module._chunks(5, 3 * 9 * 20)) == 5
    out2, cache2 = layer.call(x)
    grads2 = {k: np.zeros_like(v) for k, v in layer.params.items()}
    dx2 = layer.call_backward(g, cache2, grads2)
    for name, ours, expected in [("out", out2, out), ("dx", dx2, dx), ("dW", grads2["W"], grads["W"]),
                                 ("db", grads2["b"], grads["b"])]:
        _assert_close(ours, expected, f"{cls.__name__} chunked {name}")


def test_call_backward_adds_into_the_callers_buffers_and_keeps_no_state():
    layer = _layer(Conv2d, 2, 3, 3, 1, 1, seed=12)
    rng = np.random.default_rng(13)
    xa, xb = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 5, 5))
    out_a, cache_a = layer.call(xa)
    out_b, cache_b = layer.call(xb)                          # a second call does not disturb the first's cache
    ga, gb = rng.standard_normal(out_a.shape), rng.standard_normal(out_b.shape)
    grads = {k: np.zeros_like(v) for k, v in layer.params.items()}
    layer.call_backward(ga, cache_a, grads)
    layer.call_backward(gb, cache_b, grads)
    both = np.concatenate([xa, xb])
    layer.forward(both)
    layer.backward(np.concatenate([ga, gb]))
    _assert_close(grads["W"], layer.dW, "dW summed over two calls vs one call on both batches")
    _assert_close(grads["b"], layer.db, "db summed over two calls vs one call on both batches")


def test_float32_stays_float32():
    layer = Conv2d(1, 2, 3, 1, 1)
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 6)).astype(np.float32)
    out = layer.forward(x)
    dx = layer.backward(np.ones_like(out))
    assert (out.dtype, dx.dtype, layer.dW.dtype) == (np.float32,) * 3, (out.dtype, dx.dtype, layer.dW.dtype)


@pytest.mark.parametrize("make,names", [
    (lambda: Conv2d(0, 2, 3), "in_channels"),
    (lambda: Conv2d(1, 2, 3, stride=0), "stride"),
    (lambda: Conv2d(1, 2, 3, padding=-1), "padding"),
    (lambda: Conv2d(1, 2, 3, padding=3), "padding"),
    (lambda: Conv2d(1, 2, (3, 3, 3)), "kernel_size"),
    (lambda: ConvTranspose2d(1, 2, 3, stride=2, output_padding=2), "output_padding"),
    (lambda: Conv2d(1, 2, 5).forward(np.zeros((1, 1, 4, 4))), "x"),        # image smaller than the kernel
    (lambda: Conv2d(3, 2, 3).forward(np.zeros((1, 1, 5, 5))), "x"),        # wrong channel count
    (lambda: Conv2d(1, 2, 3).forward(np.zeros((5, 5))), "x"),              # not NCHW
    (lambda: ConvTranspose2d(1, 1, 3, stride=1, padding=2).forward(np.zeros((1, 1, 1, 1))), "x"),
    (lambda: Reshape((2, 3)).call(np.zeros((4, 5))), "x"),
    (lambda: Reshape((0, 3)), "shape"),
])
def test_bad_arguments_are_refused_by_name(make, names):
    with pytest.raises(InputError) as err:
        make()
    assert str(err.value).startswith(names), f"ours {err.value!s} vs expected a message naming {names!r}"


def test_flatten_and_reshape_are_each_others_inverse():
    x = np.arange(24.0).reshape(2, 3, 2, 2)
    flat, cache = Flatten().call(x)
    assert flat.shape == (2, 12) and np.array_equal(Flatten().call_backward(flat, cache), x)
    img, cache = Reshape((3, 2, 2)).call(flat)
    assert np.array_equal(img, x) and np.array_equal(Reshape((3, 2, 2)).call_backward(img, cache), flat)
