"""TensorFlow's CPU Conv2DBackpropInput without oneDNN has no dilated and no grouped kernel: it refuses.

The input gradient of a dilated or a grouped tf.nn.conv2d (and tf.nn.conv2d_transpose with dilations,
which is the same op) fails on the CPU with "Current CPU implementations do not yet support dilation
rates larger than 1" / "Gradients for grouped convolutions are not supported on CPU" wherever TF runs
without oneDNN: in float64 always, and in every dtype when oneDNN is off, which TF 2.21 leaves off by
default on CPUs without AVX-512 VNNI/BF16 or AMX (an AVX2-only CPU).  With explicit pads it refuses even
with oneDNN.  This script forces the path: TF_ENABLE_ONEDNN_OPTS=0 before tensorflow is imported, so it is
the same on any CPU.  A refusal, not wrong numbers: exit 1 while TF refuses, 0 once it gives the right
gradients.
"""
import os
import sys

os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"  # the path under test, whatever the CPU
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def could_not_run(kind, value, tb):  # an unexpected error exits 2 (could not run), not 1 (the deviation)
    sys.__excepthook__(kind, value, tb)
    sys.stdout.flush()
    os._exit(2)


sys.excepthook = could_not_run
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def input_gradient(x_shape, K, dY, d, groups):
    """dX of the 'VALID', stride-1 cross-correlation y[i, j, o] = sum x[i + a d, j + b d, c] K[a, b, c', o]
    over the input channels c of o's group (NHWC x, HWIO K with in-depth C / groups), in NumPy loops."""
    _, h, w, c = x_shape
    kh, kw, cg, o = K.shape
    og = o // groups
    dX = np.zeros(x_shape)
    for i in range(dY.shape[1]):
        for j in range(dY.shape[2]):
            for m in range(o):
                g = m // og
                for a in range(kh):
                    for b in range(kw):
                        for cc in range(cg):
                            dX[0, i + a * d, j + b * d, g * cg + cc] += dY[0, i, j, m] * K[a, b, cc, m]
    return dX


cases = {
    "dilated (rate 2)": ((1, 3, 3, 1), np.array([1.0, 2.0, 3.0, 4.0]).reshape(2, 2, 1, 1), np.ones((1, 1, 1, 1)),
                         2, 1),
    "grouped (2 groups)": ((1, 2, 2, 2), np.arange(1.0, 9.0).reshape(2, 2, 1, 2),
                           np.array([1.0, 10.0]).reshape(1, 1, 1, 2), 1, 2),
}
print(f"tensorflow {tf.__version__}, TF_ENABLE_ONEDNN_OPTS=0")
present = False
for name, (x_shape, K, dY, d, groups) in cases.items():
    expected = input_gradient(x_shape, K, dY, d, groups)
    print(f"\n{name}: input shape {x_shape} (NHWC), filter {K.shape} (HWIO), per output channel:\n",
          K[:, :, 0, :].transpose(2, 0, 1), "\ndY:", dY.ravel(),
          "\nexpected dX (NumPy loop), per channel:\n", expected[0].transpose(2, 0, 1))
    try:
        got = tf.compat.v1.nn.conv2d_backprop_input(x_shape, tf.constant(K, tf.float32), tf.constant(dY, tf.float32),
                                                    strides=(1, 1, 1, 1), padding="VALID",
                                                    dilations=(1, d, d, 1)).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as exc:
        print("observed tf.compat.v1.nn.conv2d_backprop_input, float32 on the CPU:", type(exc).__name__,
              str(exc.message).split("}}")[-1].strip())
        present = True
        continue
    print("observed tf.compat.v1.nn.conv2d_backprop_input, float32 on the CPU, per channel:\n",
          got[0].transpose(2, 0, 1))
    present |= not np.array_equal(got, expected)
if not present:
    print("conforms: the deviation is gone")
    sys.exit(0)
print("\nDEVIATION: the CPU's Conv2DBackpropInput without oneDNN refuses a dilated or a grouped gradient")
sys.exit(1)
