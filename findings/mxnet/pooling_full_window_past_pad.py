"""mxnet.npx.pooling(pooling_convention='full') keeps a last window that starts past the padded input.

The ceil-mode rule of Caffe and PyTorch: out = ceil((n + 2p - k) / s) + 1, less one when the last
window would start at or past n + p (in the trailing pad or beyond), so every window holds an input cell.
MXNet's 'full' is the plain ceil without that correction: for a 4x4 input, window 2, stride 3, pad 1 it
gives 3x3 where the rule gives 2x2, and the extra row and column pool no input cell at all (max:
-3.4e38, the lowest float32; avg: 0).  Exit 1 while the deviation is present, 0 once it is gone.
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
X = -np.arange(1.0, 17.0, dtype=np.float32).reshape(4, 4)
k, s, p = 2, 3, 1


def reference(X, k, s, p):
    """Max pooling with ceil sizes and symmetric pads, by Caffe's / PyTorch's rule, in NumPy loops."""
    n = X.shape[0]
    out = -(-(n + 2 * p - k) // s) + 1
    if (out - 1) * s >= n + p:  # the last window would start in the trailing pad: dropped
        out -= 1
    Y = np.zeros((out, out), dtype=X.dtype)
    for i in range(out):
        for j in range(out):
            rows = range(max(i * s - p, 0), min(i * s - p + k, n))
            cols = range(max(j * s - p, 0), min(j * s - p + k, n))
            Y[i, j] = max(X[r, c] for r in rows for c in cols)
    return Y


expected = reference(X, k, s, p)
got = mx.npx.pooling(mx.np.array(X.reshape(1, 1, 4, 4)), kernel=(k, k), stride=(s, s), pad=(p, p),
                     pool_type="max", pooling_convention="full").asnumpy()[0, 0]
print(f"mxnet {mx.__version__}")
print("X:\n", X, f"\nkernel={k}, stride={s}, pad={p}, pool_type='max', pooling_convention='full'")
print("expected (NumPy loop, Caffe's / PyTorch's ceil rule):\n", expected)
print("observed npx.pooling:\n", got)
if got.shape == expected.shape and np.array_equal(got, expected):
    print("conforms: the deviation is gone")
    sys.exit(0)
print("DEVIATION: 'full' keeps a last window that holds no input cell")
sys.exit(1)
