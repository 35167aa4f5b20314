"""keras-tensorflow: keras.ops.conv refuses strides > 1 together with dilation_rate > 1.

keras' TensorFlow conv (tf.nn.convolution underneath) raises "`strides > 1` not supported in conjunction
with `dilation_rate > 1`", where keras-torch and keras-jax compute the strided, dilated correlation.
keras.ops.depthwise_conv on the same engine computes it.  Same keras call, three engines, two answers.

Run: python tensorflow_conv_strides_with_dilation_refused.py [engine]   (default engine: tensorflow)
Exits 1 while the deviation is present, 0 once it is gone.
"""
import os
import sys

os.environ["KERAS_BACKEND"] = sys.argv[1] if len(sys.argv) > 1 else "tensorflow"

import keras  # noqa: E402
import numpy as np  # noqa: E402

X = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)  # NHWC
K = np.array([[1.0, -1.0], [2.0, 0.5]], dtype=np.float32).reshape(2, 2, 1, 1)  # HWIO
# The definition: Y[i, j] = sum_{a,b} X[2i + 2a, 2j + 2b] K[a, b] (stride 2, dilation 2, 'valid').
expected = np.array([[sum(X[0, 2 * i + 2 * a, 2 * j + 2 * b, 0] * K[a, b, 0, 0] for a in range(2) for b in range(2))
                      for j in range(2)] for i in range(2)], dtype=np.float32).reshape(1, 2, 2, 1)
print(f"keras {keras.__version__} on {keras.backend.backend()}")
print("X[0, :, :, 0]:\n", X[0, :, :, 0], "\nK[:, :, 0, 0]:\n", K[:, :, 0, 0])
print("keras.ops.conv(X, K, strides=2, padding='valid', dilation_rate=2)")
print("expected:", expected.ravel().tolist())
failed = False
for name, call in (("conv", lambda: keras.ops.conv(X, K, strides=2, padding="valid", dilation_rate=2)),
                   ("depthwise_conv", lambda: keras.ops.depthwise_conv(X, K, strides=2, padding="valid",
                                                                       dilation_rate=2))):
    try:
        observed = keras.ops.convert_to_numpy(call())
    except Exception as exc:  # noqa: BLE001
        print(f"observed ({name}): {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
        failed = True
        continue
    same = observed.shape == expected.shape and np.array_equal(observed, expected)
    print(f"observed ({name}):", observed.ravel().tolist(), "" if same else "  <-- differs")
    failed |= not same
if failed:
    print("DEVIATION: strides > 1 with dilation_rate > 1 is refused (or wrong)")
    sys.exit(1)
print("OK: strided, dilated correlation as defined")
