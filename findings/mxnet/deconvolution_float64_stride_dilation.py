"""mxnet.npx.deconvolution in float64 on the CPU with stride 2 and dilation 2 places the kernel copies wrongly.

A transposed convolution adds x[i, j] * K at output offset (s*i, s*j), the kernel's taps d apart.  With
stride 2 and dilation 2 on the same axes, MXNet 1.9.1's float64 CPU kernel (the path without oneDNN)
puts the taps elsewhere; float32 (through oneDNN) is right.  Exit 1 while the deviation is present, 0 once
it is gone.
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
X = np.array([[1.0, 2.0], [3.0, 4.0]])
K = np.array([[1.0, 2.0], [3.0, 4.0]])
s, d = 2, 2


def reference(X, K, s, d):
    """The transposed convolution (no padding) in NumPy loops: each input cell scatters a dilated kernel copy."""
    n, k = X.shape[0], K.shape[0]
    size = (n - 1) * s + d * (k - 1) + 1
    out = np.zeros((size, size))
    for i in range(n):
        for j in range(n):
            for a in range(k):
                for b in range(k):
                    out[i * s + a * d, j * s + b * d] += X[i, j] * K[a, b]
    return out


def deconvolution(dtype):
    x = mx.np.array(X.reshape(1, 1, 2, 2), dtype=dtype)
    k = mx.np.array(K.reshape(1, 1, 2, 2), dtype=dtype)  # (C_in, C_out, kh, kw)
    return mx.npx.deconvolution(x, k, kernel=(2, 2), stride=(s, s), dilate=(d, d), num_filter=1,
                                no_bias=True).asnumpy()[0, 0]


expected = reference(X, K, s, d)
got = deconvolution("float64")
print(f"mxnet {mx.__version__}")
print("X:\n", X, "\nK:\n", K, f"\nstride={s}, dilate={d}, pad=0")
print("expected (NumPy loop):\n", expected)
print("observed npx.deconvolution, float64 on the CPU:\n", got)
print("npx.deconvolution, float32 (oneDNN), for comparison:\n", deconvolution("float32"))
if got.shape == expected.shape and np.array_equal(got, expected):
    print("conforms: the deviation is gone")
    sys.exit(0)
print("DEVIATION: float64 deconvolution with stride 2 and dilation 2 places the kernel copies wrongly")
sys.exit(1)
