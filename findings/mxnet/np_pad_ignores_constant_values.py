"""mxnet.np.pad(mode='constant', constant_values=v) pads zeros whatever v is.

NumPy's np.pad fills the pad with constant_values; MXNet 1.9.1's mxnet.np.pad accepts the argument and
pads 0 (measured with -inf, -5, 7 and 1).  A max pooling over a pad of -inf, or an average that counts the
padded cells as ones, then silently comes out wrong.  Exit 1 while the deviation is present, 0 once it is
gone.
"""
import os
import sys


def could_not_run(kind, value, tb):  # an unexpected error exits 2 (could not run), not 1 (the deviation)
    sys.__excepthook__(kind, value, tb)
    sys.stdout.flush()
    os._exit(2)


sys.excepthook = could_not_run
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

mx.npx.set_np()
X = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)


def reference(X, value):
    """X with one cell of ``value`` around it, in NumPy loops."""
    h, w = X.shape
    out = np.full((h + 2, w + 2), value, dtype=X.dtype)
    for i in range(h):
        for j in range(w):
            out[i + 1, j + 1] = X[i, j]
    return out


present = False
print(f"mxnet {mx.__version__}")
print("X:\n", X, "\npad_width=((1, 1), (1, 1)), mode='constant'")
for value in (-np.inf, -5.0, 7.0):
    expected = reference(X, value)
    got = mx.np.pad(mx.np.array(X), ((1, 1), (1, 1)), mode="constant", constant_values=value).asnumpy()
    print(f"constant_values={value}: expected (NumPy loop):\n", expected, "\nobserved mxnet.np.pad:\n", got)
    present |= not np.array_equal(got, expected)
if not present:
    print("conforms: the deviation is gone")
    sys.exit(0)
print("DEVIATION: mxnet.np.pad ignores constant_values and pads zeros")
sys.exit(1)
