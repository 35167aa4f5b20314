"""tf.nn.conv2d on the CPU flushes float32 and bfloat16 subnormals to zero (FTZ/DAZ); float64 keeps them.

IEEE 754 arithmetic keeps subnormal numbers (below 2**-126 in float32 and bfloat16).  TensorFlow's CPU
runtime sets the x86 flush-to-zero and denormals-are-zero modes in its threads, so subnormal inputs count
as 0 and subnormal results become 0.  Inputs: multiples of 2**-130, whose sums every dtype holds exactly.
This may depend on the CPU and the build, so the script reports what this one does: exit 1 if any of
float32 / bfloat16 flushes, 0 if both keep the subnormals.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def could_not_run(kind, value, tb):  # an unexpected error exits 2 (could not run), not 1 (the deviation)
    sys.__excepthook__(kind, value, tb)
    sys.stdout.flush()
    os._exit(2)


sys.excepthook = could_not_run
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

UNIT = 2.0 ** -130  # subnormal in float32 and bfloat16
X = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 1.0, 2.0]]) * UNIT
K = np.array([[1.0, 2.0], [1.0, 1.0]])


def reference(X, K):
    """'VALID' cross-correlation in NumPy loops (float64: exact here)."""
    kh, kw = K.shape
    out = np.zeros((X.shape[0] - kh + 1, X.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = sum(X[i + a, j + b] * K[a, b] for a in range(kh) for b in range(kw))
    return out


expected = reference(X, K)
print(f"tensorflow {tf.__version__}, TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', '(unset)')}")
print("X / 2**-130:\n", X / UNIT, "\nK:\n", K)
print("expected / 2**-130 (NumPy loop):\n", expected / UNIT)


def exact_tensor(A, dtype):
    """A as a TF tensor of dtype, bit for bit: a float32 constant, or bfloat16 through a bitcast of the top
    16 bits of float32 (exact for these values); tf.cast and bfloat16 conversion would flush already."""
    a32 = np.ascontiguousarray(A, dtype=np.float32)
    if dtype == "bfloat16":
        return tf.bitcast(tf.constant((a32.view(np.uint32) >> 16).astype(np.uint16)), tf.bfloat16)
    return tf.constant(a32) if dtype == "float32" else tf.constant(np.asarray(A, dtype=np.float64))


flushed = []
for dtype in ("float32", "bfloat16", "float64"):
    with tf.device("/CPU:0"):
        x, k = exact_tensor(X.reshape(1, 3, 3, 1), dtype), exact_tensor(K.reshape(2, 2, 1, 1), dtype)
        held = x.numpy().astype(np.float64)[0, :, :, 0]  # what TF holds: the subnormal inputs, unflushed
        got = tf.nn.conv2d(x, k, 1, "VALID").numpy().astype(np.float64)[0, :, :, 0]
    assert np.array_equal(held, X), f"{dtype}: the input is not held exactly"
    print(f"observed tf.nn.conv2d {dtype} on the CPU / 2**-130 (input held exactly):\n", got / UNIT)
    if not np.array_equal(got, expected):
        flushed.append(dtype)
if not flushed:
    print("conforms: subnormals kept in every dtype")
    sys.exit(0)
print(f"DEVIATION: subnormals flushed to zero in {', '.join(flushed)}")
sys.exit(1)
