"""tf.nn.conv2d on the CPU with a grouped filter (in-channels C_in / groups) in bfloat16 returns garbage.

A depthwise-shaped grouped convolution: 2 input channels, groups 2, 4 output channels (a multiplier of 2),
a 1x3 kernel, NHWC input (2, 3, 3, 2), stride (1, 2).  float32 gives the exact result; bfloat16 (every input
and product exact in bfloat16: small integers) returns values such as 3e13, NaN or 0 that change from one
process to the next (uninitialised memory).  Only where TensorFlow runs oneDNN (on by default on CPUs with
AVX-512 VNNI/BF16 or AMX; TF_ENABLE_ONEDNN_OPTS=1 elsewhere): without it the same calls are right, and the
script says it does not apply (exit 3).  Found by the conv-conformance suite (fixed case
depthwise_unequal_strides, first drawn by a generated property through Keras on TensorFlow).
Exits 1 while the deviation is present, 0 once it is gone.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

rng = np.random.default_rng(0)
X = rng.integers(-3, 4, (2, 3, 3, 2)).astype(np.float32)  # NHWC
K = rng.integers(-3, 4, (1, 3, 1, 4)).astype(np.float32)  # HWIO, I = C_in / groups = 1


def reference(X, K, stride):
    """Grouped cross-correlation in NumPy loops (float64, exact for these integers)."""
    n, h, w, c = X.shape
    kh, kw, _, cout = K.shape
    per = cout // c
    oh, ow = (h - kh) // stride[0] + 1, (w - kw) // stride[1] + 1
    out = np.zeros((n, oh, ow, cout))
    for o in range(cout):
        g = o // per
        for i in range(oh):
            for j in range(ow):
                win = X[:, i * stride[0]:i * stride[0] + kh, j * stride[1]:j * stride[1] + kw, g]
                out[:, i, j, o] = (win * K[:, :, 0, o]).sum(axis=(1, 2))
    return out


print(f"tensorflow {tf.__version__}; X NHWC {X.shape}, filter HWIO {K.shape} (groups 2), 'VALID'")
wrong = 0
for stride in ((1, 2), (1, 1), (2, 2)):
    expected = reference(X.astype(np.float64), K.astype(np.float64), stride)
    for dtype in (tf.float32, tf.bfloat16):
        got = tf.cast(tf.nn.conv2d(tf.cast(X, dtype), tf.cast(K, dtype), strides=[1, *stride, 1],
                                   padding="VALID"), tf.float64).numpy()
        ok = np.array_equal(got, expected)
        wrong += not ok
        print(f"stride {stride} {dtype.name:8}: {'right' if ok else 'WRONG'}"
              + ("" if ok else f"  expected {expected.ravel()[:6].tolist()} observed {got.ravel()[:6].tolist()}"))
if not wrong:
    from tensorflow.python.util import _pywrap_util_port

    if not _pywrap_util_port.IsMklEnabled():
        print("does not apply here: TensorFlow runs without oneDNN on this CPU (TF_ENABLE_ONEDNN_OPTS=1 forces it)")
        sys.exit(3)
if wrong:
    print(f"DEVIATION: {wrong} grouped bfloat16 convolution(s) wrong")
    sys.exit(1)
print("conforms: every grouped convolution is right")
sys.exit(0)
