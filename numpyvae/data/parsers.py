"""The four file formats: IDX (MNIST, Fashion-MNIST), .amat (binarized MNIST), .mat (Frey Face), the digits CSV.

``parse_*`` turn bytes already in memory into a uint8 array; ``read_*`` read a
plain or gzip'd file (through :mod:`numpyvae.data.content`, so memory stays
bounded by ``max_bytes``) and parse it.  Every refusal is a DataError whose
message starts with the file and says what was expected.
"""
import gzip
import io
import math
import warnings
import zlib

import numpy as np

from ..errors import DataError
from ..validate import check_positive_int
from .content import MAX_BYTES, Content, read_content

# ---- IDX ---------------------------------------------------------------------------------

IDX_UBYTE = 0x08


def idx_header(head, path="<bytes>"):
    """The dimensions of an IDX file from its first bytes, and the header length.

    Layout: two zero bytes, the type code (0x08 = unsigned byte, the only one
    supported), the number of dimensions (1..4), each dimension as a
    big-endian uint32, then exactly prod(dims) bytes of data.
    ``head`` must hold at least the header (4 + 4 * ndim bytes); returns (dims, header length).
    """
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise DataError(f"{path}: not an IDX file (it must start with two zero bytes, got {bytes(head[:2])!r})")
    if head[2] != IDX_UBYTE:
        raise DataError(f"{path}: IDX type code 0x{head[2]:02x} is not supported, expected 0x08 (unsigned bytes)")
    ndim = head[3]
    if not 1 <= ndim <= 4:
        raise DataError(f"{path}: IDX file with {ndim} dimensions, expected 1 to 4")
    header = 4 + 4 * ndim
    if len(head) < header:
        raise DataError(f"{path}: truncated IDX header: expected {header} bytes, got {len(head)}")
    dims = tuple(int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return dims, header


def _idx_length_error(path, dims, expected, got, more=False):
    """``got`` bytes where the dimensions need ``expected``; ``more``: at least that many, the rest unread."""
    what = "truncated" if got < expected else "has trailing bytes"
    return DataError(f"{path}: IDX file {what}: dimensions {dims} need {expected:,} bytes, "
                     f"got {'more than ' if more else ''}{got:,}")


def parse_idx(content, path="<bytes>"):
    """IDX bytes -> uint8 array of the dimensions in the header (a view of ``content``)."""
    dims, header = idx_header(content[:20], path)
    expected = header + math.prod(dims)
    if len(content) != expected:
        raise _idx_length_error(path, dims, expected, len(content))
    return np.frombuffer(content, np.uint8, offset=header).reshape(dims)


def read_idx(path, max_bytes=MAX_BYTES):
    """Read a plain or gzip'd IDX file into a uint8 array, e.g. (60000, 28, 28).

    The header is read first: a file declaring more than ``max_bytes`` bytes
    is refused before anything is allocated for it.
    """
    max_bytes = check_positive_int("max_bytes", max_bytes, minimum=0)
    with Content(path) as c:
        head = c.read(4)
        head += c.read(4 * head[3]) if len(head) == 4 else b""
        dims, header = idx_header(head, path)
        expected = header + math.prod(dims)
        if expected > max_bytes:
            raise DataError(f"{path}: the IDX header declares dimensions {dims}, {expected:,} bytes, more than "
                            f"max_bytes={max_bytes:,}; pass a larger max_bytes if the file is really that large")
        data = c.read_exactly(expected - header)
        if len(data) < expected - header:
            raise _idx_length_error(path, dims, expected, header + len(data))
        if not c.at_end():
            raise _idx_length_error(path, dims, expected, expected + 1, more=True)
    return np.frombuffer(data, np.uint8).reshape(dims)


# ---- .amat -------------------------------------------------------------------------------

def parse_amat(content, path="<bytes>", width=784):
    """Text lines of ``width`` values 0/1 separated by single spaces -> uint8 (n, width).

    Each value is one digit followed by a space (or a newline after the last),
    so a well-formed file is a (n, width, 2) array of bytes: it is checked and
    converted in one vectorised step.  Anything else is described by line.
    """
    a = np.frombuffer(content, np.uint8)
    if a.size and a.size % (2 * width) == 0:
        pairs = a.reshape(-1, width, 2)
        digits, seps = pairs[:, :, 0], pairs[:, :, 1]
        values_ok = ((digits == ord("0")) | (digits == ord("1"))).all()
        separators_ok = (seps[:, :-1] == ord(" ")).all() and (seps[:, -1] == ord("\n")).all()
        if values_ok and separators_ok:
            return digits - np.uint8(ord("0"))
    raise DataError(f"{path}: {_first_bad_line(bytes(content), width)}; expected lines of {width} values "
                    "0 or 1 separated by single spaces")


def _first_bad_line(content, width):
    """Describe the first line of a malformed .amat text (the slow path, for the error message)."""
    if not content:
        return "the file is empty"
    lines = content.split(b"\n")
    for number, line in enumerate(lines[:-1], start=1):
        values = line.split(b" ")
        if len(values) != width:
            return f"line {number} has {len(values)} values"
        bad = next((v for v in values if v not in (b"0", b"1")), None)
        if bad is not None:
            return f"line {number} has the value {bad[:20]!r}"
    if lines[-1]:
        return f"line {len(lines)} does not end with a newline"
    return "malformed text"   # not reached: the fast path accepts everything the loop accepts


def read_amat(path, max_bytes=MAX_BYTES):
    """Read a plain or gzip'd .amat file of binarized MNIST into uint8 (n, 784) of 0/1."""
    return parse_amat(read_content(path, max_bytes), path)


# ---- Frey Face (.mat) ----------------------------------------------------------------------

FREY_PIXELS = 560                # 28 x 20
MAX_FACES = 100_000              # far above the 1,965 of the real file: a bound on what a header may claim


def parse_frey(content, path="<bytes>"):
    """The content of frey_rawface.mat -> uint8 (n_faces, 560); row i is ``ff[:, i]`` (a 28x20 image).

    The variable's header is checked (scipy's whosmat) before its data is
    read, so a file declaring a huge matrix is refused without allocating it.
    """
    try:
        from scipy.io import loadmat, whosmat
    except ImportError:
        raise DataError("reading frey_rawface.mat needs scipy: pip install numpyvae[frey]") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")     # scipy warns "returned data may be corrupt": refuse instead
            declared = {var: (shape, dtype) for var, shape, dtype in whosmat(io.BytesIO(content))}
            if "ff" not in declared:
                raise DataError(f"{path}: no matrix 'ff' in the file (it holds {sorted(declared) or 'nothing'}), "
                                f"expected uint8 ({FREY_PIXELS}, n_faces)")
            shape, dtype = declared["ff"]
            if dtype != "uint8" or len(shape) != 2 or shape[0] != FREY_PIXELS or not 1 <= shape[1] <= MAX_FACES:
                raise DataError(f"{path}: 'ff' is {dtype} {tuple(shape)}, expected uint8 ({FREY_PIXELS}, n_faces) "
                                f"with 1 <= n_faces <= {MAX_FACES:,}")
            ff = loadmat(io.BytesIO(content), variable_names=["ff"])["ff"]
    except DataError:
        raise
    except Exception as exc:   # scipy raises many kinds of errors for a damaged file
        raise DataError(f"{path}: not a MATLAB file holding a matrix 'ff' ({type(exc).__name__}: {exc})") from None
    if ff.shape != tuple(shape) or ff.dtype != np.uint8:
        raise DataError(f"{path}: 'ff' is {ff.dtype} {ff.shape}, expected uint8 {tuple(shape)} as its header says")
    return np.ascontiguousarray(ff.T)


def read_frey(path, max_bytes=MAX_BYTES):
    """Read frey_rawface.mat (plain or gzip'd; needs scipy) into uint8 (1965, 560), one face per row."""
    return parse_frey(read_content(path, max_bytes), path)


# ---- the embedded digits (CSV) ---------------------------------------------------------------

DIGITS_ROWS = 1797


def parse_digits(raw, path="<bytes>"):
    """The gzip'd CSV of the 8x8 digits -> x uint8 (1797, 64) with values 0..16, y int64 (1797,) with 0..9.

    ``raw`` is the .gz as stored in the package (its sha256 already checked).
    """
    try:
        table = np.loadtxt(io.BytesIO(gzip.decompress(raw)), delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise DataError(f"{path}: not a gzip'd table of integers ({exc})") from None
    if table.shape != (DIGITS_ROWS, 65) or table.min() < 0 or table[:, :64].max() > 16 or table[:, 64].max() > 9:
        raise DataError(f"{path}: unexpected table {table.shape} with values {table.min()}..{table.max()}, "
                        f"expected ({DIGITS_ROWS}, 65): 64 pixels 0..16 and a label 0..9 per row")
    return table[:, :64].astype(np.uint8), table[:, 64]
