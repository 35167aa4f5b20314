"""mxnet.npx.convolution(layout='NHWC') refuses to run on the CPU, in float32 with a misleading message.

The documentation lists NHWC among the layouts of npx.convolution; on the CPU it fails when the result is
read: float64 (MXNet's own kernel) with "Only support NCW, NCHW and NCDHW layout", float32 (oneDNN) with
"could not create a descriptor for a dilated convolution forward propagation primitive" although nothing
is dilated.  A refusal, not wrong numbers: exit 1 while the CPU refuses, 0 once it gives the right numbers.
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
X = np.arange(1.0, 17.0).reshape(1, 4, 2, 2)  # NHWC: 4x2 image, 2 channels
K = np.array([[[[1.0, 0.0], [2.0, 1.0]], [[0.0, 1.0], [1.0, 3.0]]]])  # (C_out=1, kh=2, kw=2, C_in=2): OHWI


def reference(X, K):
    """'VALID' cross-correlation of NHWC X with OHWI K, in NumPy loops; NHWC out."""
    _, h, w, c = X.shape
    o, kh, kw, _ = K.shape
    out = np.zeros((1, h - kh + 1, w - kw + 1, o))
    for i in range(h - kh + 1):
        for j in range(w - kw + 1):
            for m in range(o):
                out[0, i, j, m] = sum(X[0, i + a, j + b, ch] * K[m, a, b, ch]
                                      for a in range(kh) for b in range(kw) for ch in range(c))
    return out


expected = reference(X, K)
print(f"mxnet {mx.__version__}")
print("X (NHWC):\n", X, "\nK (OHWI):\n", K)
print("expected (NumPy loop), NHWC:\n", expected)
present = False
for dtype in ("float32", "float64"):
    try:
        y = mx.npx.convolution(mx.np.array(X, dtype=dtype), mx.np.array(K, dtype=dtype), kernel=(2, 2),
                               num_filter=1, no_bias=True, layout="NHWC")
        got = y.asnumpy()  # MXNet is asynchronous: the error surfaces when the result is read
    except mx.base.MXNetError as exc:
        print(f"observed npx.convolution(layout='NHWC'), {dtype} on the CPU: "
              f"{[line for line in str(exc).splitlines() if line.strip()][-1].strip()}")
        present = True
        continue
    print(f"observed npx.convolution(layout='NHWC'), {dtype} on the CPU:\n", got)
    present |= not np.array_equal(got, expected)
if not present:
    print("conforms: the deviation is gone")
    sys.exit(0)
print("DEVIATION: the CPU refuses channels-last convolution")
sys.exit(1)
