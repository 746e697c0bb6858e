"""Convolution layers with hand-written backward passes (derivations/12-convolution.md).

Images are NCHW: x has shape (N, C, H, W).  A 2-D convolution (as deep
learning uses the word: a cross-correlation) with F filters of size kh x kw,
stride s and zero padding p is, for every output position (i, j),

    out[n, f, i, j] = b[f] + sum_{c, u, v} W[f, c, u, v] * xp[n, c, s*i + u, s*j + v]    (eq. C1)

where xp is x padded with p zeros on every side.  Written as one matrix
product (eq. C2 of the note): each window of xp becomes a row of the
*column matrix* ``cols`` (N*Ho*Wo, C*kh*kw) -- "im2col" -- and

    out = cols @ W_mat.T + b,   W_mat = W.reshape(F, C*kh*kw).

The backward pass is three more products and the adjoint of im2col
("col2im", which adds every window's gradient back where the window came
from):

    dW_mat = dout_mat.T @ cols,   db = sum of dout_mat over rows,   dx = col2im((dout_mat @ W_mat)^T)

Why im2col: it is the scheme CS231n teaches, it turns the layer into the
``Linear`` layer a student already knows, and the products run at BLAS
speed.  Its cost is memory: the column matrix is kh*kw/s^2 times larger
than the input, so a batch is cut into chunks whose columns hold at most
MAX_COLS numbers.  ``ConvTranspose2d`` is the adjoint of ``Conv2d``: its
forward is Conv2d's backward with respect to the input, and its backward
uses Conv2d's forward.

Both layers have the per-call interface of numpyvae.layers: ``call(x)``
returns (out, cache) and ``call_backward(dout, cache, grads)`` adds the
parameter gradients into the caller's buffers; ``forward``/``backward`` are
the step-through versions that keep one cache on the layer.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .errors import InputError
from .layers import Layer
from .validate import check_dtype, check_positive_int, check_rng

# the most numbers one chunk's column matrix may hold (64 MB in float32): a large batch is
# processed in chunks of examples so that im2col's copy never exceeds this
MAX_COLS = 2**24


def conv_output_size(size, kernel, stride, padding):
    """Output length of a convolution along one axis: floor((size + 2p - k) / s) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x, kernel, stride, padding, out_hw):
    """x (N, C, H, W) -> cols (N*Ho*Wo, C*kh*kw): row (n, i, j) is the window of x under output (i, j).

    Columns are ordered (c, u, v), matching W.reshape(F, C*kh*kw).
    """
    (kh, kw), (Ho, Wo) = kernel, out_hw
    N, C = x.shape[:2]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding))) if padding else x
    # every kh x kw window as a view, (N, C, H', W', kh, kw); no copy yet (for speed)
    windows = sliding_window_view(xp, (kh, kw), axis=(2, 3))
    windows = windows[:, :, :stride * (Ho - 1) + 1:stride, :stride * (Wo - 1) + 1:stride]   # stride: every s-th window
    # one copy into (N, Ho, Wo, C, kh, kw) order, then a free reshape to rows
    return np.ascontiguousarray(windows.transpose(0, 2, 3, 1, 4, 5)).reshape(N * Ho * Wo, C * kh * kw)


def col2im(cols_t, x_shape, kernel, stride, padding, out_hw):
    """The adjoint of im2col: cols_t (C*kh*kw, N*Ho*Wo), the column matrix transposed -> dx (N, C, H, W).

    Each window's gradient is added back where the window came from.  The
    columns arrive transposed (row (c, u, v), column (n, i, j)), so that for
    one kernel offset (u, v) the numbers of all windows are contiguous (for
    speed: the 16 strided additions of a 4x4 kernel then read memory in order).
    """
    (kh, kw), (Ho, Wo) = kernel, out_hw
    N, C, H, W = x_shape
    cols_t = cols_t.reshape(C, kh, kw, N, Ho, Wo)
    # the padded image, channels first (matching cols_t), large enough for every window
    dxp = np.zeros((C, N, max(H + 2 * padding, stride * (Ho - 1) + kh),
                    max(W + 2 * padding, stride * (Wo - 1) + kw)), dtype=cols_t.dtype)
    for u in range(kh):                      # kh*kw strided additions instead of N*Ho*Wo small ones (for speed)
        for v in range(kw):
            dxp[:, :, u:u + stride * (Ho - 1) + 1:stride, v:v + stride * (Wo - 1) + 1:stride] += cols_t[:, u, v]
    # the padding's gradient is dropped; (N, C, H, W) as a view of the channels-first array (no copy)
    return dxp[:, :, padding:padding + H, padding:padding + W].transpose(1, 0, 2, 3)


def _pair(name, value):
    """An int or a pair of ints (height, width), each >= 1."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise InputError(f"{name}: expected an int or a pair (height, width), got {value!r:.80}")
        return tuple(check_positive_int(f"{name}[{i}]", v) for i, v in enumerate(value))
    v = check_positive_int(name, value)
    return v, v


def _chunks(n, per_example):
    """Example ranges [a, b) whose column matrices hold at most MAX_COLS numbers each."""
    step = max(1, MAX_COLS // max(1, per_example))
    return [(a, min(n, a + step)) for a in range(0, n, step)]


class _ConvBase(Layer):
    """What Conv2d and ConvTranspose2d share: arguments, weights, the input check."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, rng=None, dtype=np.float32):
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        self.kernel = _pair("kernel_size", kernel_size)
        self.stride = check_positive_int("stride", stride)
        self.padding = check_positive_int("padding", padding, minimum=0)
        if self.padding >= min(self.kernel):
            raise InputError(f"padding: {self.padding} is not smaller than the kernel {self.kernel}: "
                             "some outputs would see only padding; expected padding < kernel_size")
        rng = check_rng("rng", rng if rng is not None else np.random.default_rng(0))
        dtype = check_dtype("dtype", dtype)
        fan_in, fan_out = self._fans()
        a = np.sqrt(6.0 / (fan_in + fan_out))                              # Glorot uniform, as Linear
        self.W = rng.uniform(-a, a, size=self._weight_shape()).astype(dtype)
        self.b = np.zeros(out_channels, dtype=dtype)
        self.params = {"W": self.W, "b": self.b}
        self.own_grads()                                                    # dW, db for the step-through backward

    def _check_x(self, x):
        if getattr(x, "ndim", 0) != 4 or x.shape[1] != self.in_channels:
            raise InputError(f"x: expected shape (N, {self.in_channels}, H, W), "
                             f"got {getattr(x, 'shape', type(x).__name__)}")
        return self.output_shape(x.shape[1:])

    def __repr__(self):
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, kernel_size={self.kernel}, "
                f"stride={self.stride}, padding={self.padding})")


class Conv2d(_ConvBase):
    """2-D convolution (cross-correlation), eq. (C1).

    W : (F, C, kh, kw), b : (F,) with F = out_channels, C = in_channels.
    x : (N, C, H, W) -> out : (N, F, Ho, Wo), Ho = floor((H + 2p - kh) / s) + 1.
    """

    def _weight_shape(self):
        return (self.out_channels, self.in_channels, *self.kernel)

    def _fans(self):
        kk = self.kernel[0] * self.kernel[1]
        return self.in_channels * kk, self.out_channels * kk

    def output_shape(self, in_shape):
        """(C, H, W) -> (F, Ho, Wo); refuses an image smaller than the kernel."""
        C, H, W = in_shape
        Ho, Wo = (conv_output_size(n, k, self.stride, self.padding) for n, k in zip((H, W), self.kernel))
        if Ho < 1 or Wo < 1:
            raise InputError(f"x: a {H}x{W} image with padding {self.padding} is smaller than the "
                             f"{self.kernel[0]}x{self.kernel[1]} kernel; expected at least one output position")
        return self.out_channels, Ho, Wo

    def call(self, x):
        """x: (N, C, H, W) -> out (N, F, Ho, Wo), cache.  Eq. (C2): out = im2col(x) @ W_mat.T + b."""
        F, Ho, Wo = self._check_x(x)
        N = x.shape[0]
        W_mat = self.W.reshape(F, -1)
        out = np.empty((N, Ho, Wo, F), dtype=np.result_type(x, self.W))   # channels last while computing
        chunks = _chunks(N, Ho * Wo * W_mat.shape[1])
        kept = None
        for a, b in chunks:
            cols = im2col(x[a:b], self.kernel, self.stride, self.padding, (Ho, Wo))
            np.matmul(cols, W_mat.T, out=out[a:b].reshape(-1, F))
            if len(chunks) == 1:
                kept = cols                  # one chunk: keep its columns for backward (for speed)
        out += self.b
        return out.transpose(0, 3, 1, 2), (x, kept)

    def call_backward(self, dout, cache, grads=None, need_dx=True):
        """dout (N, F, Ho, Wo) -> dx (N, C, H, W); adds dW, db into grads["W"], grads["b"].

        Eq. (C3): dW_mat = dout_mat.T @ cols, db = column sums of dout_mat, dx = col2im(dout_mat @ W_mat).
        """
        x, kept = cache
        N, F, Ho, Wo = dout.shape
        W_mat = self.W.reshape(F, -1)
        dout_rows = dout.transpose(0, 2, 3, 1)                          # (N, Ho, Wo, F): rows as in cols
        dx = np.empty(x.shape, dtype=dout.dtype) if need_dx else None
        for a, b in _chunks(N, Ho * Wo * W_mat.shape[1]):
            cols = kept if kept is not None else im2col(x[a:b], self.kernel, self.stride, self.padding, (Ho, Wo))
            d = dout_rows[a:b].reshape(-1, F)                          # (n*Ho*Wo, F)
            if grads is not None:
                grads["W"] += (d.T @ cols).reshape(self.W.shape)
                grads["b"] += d.sum(axis=0)
            if need_dx:                                                 # (W_mat^T d^T): the columns transposed
                dx[a:b] = col2im(W_mat.T @ d.T, x[a:b].shape, self.kernel, self.stride, self.padding, (Ho, Wo))
        return dx


class ConvTranspose2d(_ConvBase):
    """The adjoint of Conv2d: out = (the input-gradient of Conv2d)(x), plus a bias.  Eq. (C4).

    W : (C, F, kh, kw) (in_channels first, as PyTorch), b : (F,).
    x : (N, C, H, W) -> out : (N, F, Ho, Wo), Ho = (H - 1) s - 2p + kh + output_padding.
    output_padding (0 <= op < stride) picks among the input sizes that a
    strided Conv2d maps to the same H.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 rng=None, dtype=np.float32):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, rng, dtype)
        self.output_padding = check_positive_int("output_padding", output_padding, minimum=0)
        if self.output_padding >= self.stride:
            raise InputError(f"output_padding: expected 0 <= output_padding < stride = {self.stride}, "
                             f"got {self.output_padding}")

    def _weight_shape(self):
        return (self.in_channels, self.out_channels, *self.kernel)

    def _fans(self):
        kk = self.kernel[0] * self.kernel[1]
        return self.out_channels * kk, self.in_channels * kk

    def output_shape(self, in_shape):
        C, H, W = in_shape
        Ho, Wo = ((n - 1) * self.stride - 2 * self.padding + k + self.output_padding
                  for n, k in zip((H, W), self.kernel))
        if Ho < 1 or Wo < 1:
            raise InputError(f"x: a {H}x{W} input with padding {self.padding} gives no output pixel; "
                             "expected padding small enough for an output of at least 1x1")
        return self.out_channels, Ho, Wo

    def call(self, x):
        """x: (N, C, H, W) -> out (N, F, Ho, Wo), cache.  out = col2im(x_mat @ W_mat) + b."""
        F, Ho, Wo = self._check_x(x)
        N, C, H, W = x.shape
        W_mat = self.W.reshape(C, -1)                                   # (C, F*kh*kw)
        x_cols = x.transpose(1, 0, 2, 3)                                # (C, N, H, W): one column per input pixel
        out = np.empty((N, F, Ho, Wo), dtype=np.result_type(x, self.W))
        for a, b in _chunks(N, H * W * W_mat.shape[1]):
            cols_t = W_mat.T @ x_cols[:, a:b].reshape(C, -1)            # (F*kh*kw, n*H*W): the columns transposed
            # Conv2d(F -> C) maps (F, Ho, Wo) to (C, H, W); its input-gradient is this col2im
            out[a:b] = col2im(cols_t, (b - a, F, Ho, Wo), self.kernel, self.stride, self.padding, (H, W))
        out += self.b[:, None, None]
        return out, x

    def call_backward(self, dout, cache, grads=None, need_dx=True):
        """dout (N, F, Ho, Wo) -> dx (N, C, H, W); adds dW, db into grads.

        The adjoint of col2im is im2col: cols = im2col(dout), dx_mat = cols @ W_mat.T, dW_mat = x_mat.T @ cols.
        """
        x = cache
        N, C, H, W = x.shape
        W_mat = self.W.reshape(C, -1)
        x_rows = x.transpose(0, 2, 3, 1)
        dx = np.empty((N, H, W, C), dtype=dout.dtype) if need_dx else None
        for a, b in _chunks(N, H * W * W_mat.shape[1]):
            cols = im2col(dout[a:b], self.kernel, self.stride, self.padding, (H, W))   # (n*H*W, F*kh*kw)
            if grads is not None:
                grads["W"] += (x_rows[a:b].reshape(-1, C).T @ cols).reshape(self.W.shape)
            if need_dx:
                np.matmul(cols, W_mat.T, out=dx[a:b].reshape(-1, C))
        if grads is not None:
            grads["b"] += dout.sum(axis=(0, 2, 3))
        return dx.transpose(0, 3, 1, 2) if need_dx else None
