"""tf.nn.depthwise_conv2d with strides > 1 and dilations > 1 returns other numbers, with only a warning.

Its docstring says that with a dilation > 1 all strides must be 1, yet it runs: it evaluates the dilation
by space-to-batch and applies the stride inside each block, so the output samples the wrong positions.
tf.nn.conv2d with the same kernel (groups = channels) gives the right numbers.  One channel, a 9x9 input,
a 3x3 kernel with two taps, stride 2, dilation 2, 'VALID': out[i, j] = X[2i, 2j] + 10 X[2i+4, 2j+4].
Exit 1 while the deviation is present, 0 once it is gone.
"""
import os
import sys


def could_not_run(kind, value, tb):  # an unexpected error exits 2 (could not run), not 1 (the deviation)
    sys.__excepthook__(kind, value, tb)
    sys.stdout.flush()
    os._exit(2)


sys.excepthook = could_not_run
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

X = np.arange(81, dtype=np.float32).reshape(9, 9)
K = np.zeros((3, 3), dtype=np.float32)
K[0, 0], K[2, 2] = 1.0, 10.0
s, d = 2, 2


def reference(X, K, s, d):
    """Strided, dilated cross-correlation ('VALID') in NumPy loops."""
    k = K.shape[0]
    n = (X.shape[0] - d * (k - 1) - 1) // s + 1
    out = np.zeros((n, n), dtype=np.float64)
    for i in range(n):
        for j in range(n):
            out[i, j] = sum(X[i * s + a * d, j * s + b * d] * K[a, b] for a in range(k) for b in range(k))
    return out


expected = reference(X, K, s, d)
x = tf.constant(X.reshape(1, 9, 9, 1))
try:
    got = tf.nn.depthwise_conv2d(x, tf.constant(K.reshape(3, 3, 1, 1)), strides=(1, s, s, 1), padding="VALID",
                                 dilations=(d, d)).numpy()[0, :, :, 0]
except (ValueError, tf.errors.InvalidArgumentError) as exc:  # a refusal (tensorflow#127827 raises)
    print(f"tensorflow {tf.__version__}: depthwise_conv2d refuses strides and dilations > 1 together: {exc}")
    print("conforms: the wrong numbers are gone (now a refusal)")
    sys.exit(0)
plain = tf.nn.conv2d(x, tf.constant(K.reshape(3, 3, 1, 1)), strides=(1, s, s, 1), padding="VALID",
                     dilations=(1, d, d, 1)).numpy()[0, :, :, 0]
print(f"tensorflow {tf.__version__}")
print("X (9x9):\n", X, "\nK:\n", K, f"\nstrides={s}, dilations={d}, padding='VALID'")
print("expected (NumPy loop):\n", expected)
print("observed tf.nn.depthwise_conv2d:\n", got)
print("tf.nn.conv2d, same arguments, for comparison:\n", plain)
if got.shape == expected.shape and np.array_equal(got, expected):
    print("conforms: the deviation is gone")
    sys.exit(0)
print("DEVIATION: depthwise_conv2d with stride and dilation > 1 returns other numbers")
sys.exit(1)
