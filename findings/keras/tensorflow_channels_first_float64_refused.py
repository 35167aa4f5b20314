"""keras-tensorflow: keras.ops.conv / conv_transpose with data_format="channels_first" refuse float64 on the CPU.

In float32 keras' TensorFlow conv takes channels_first on the CPU; in float64 it hands NCHW to TensorFlow,
which raises "The Conv2D op currently only supports the NHWC tensor format on the CPU" (conv_transpose:
"ConvNDCustomBackpropInputOp only supports NHWC").  keras-torch and keras-jax compute both in float64.

Run: python tensorflow_channels_first_float64_refused.py [engine]   (default engine: tensorflow)
Exits 1 while the deviation is present, 0 once it is gone.
"""
import os
import sys

os.environ["KERAS_BACKEND"] = sys.argv[1] if len(sys.argv) > 1 else "tensorflow"
if os.environ["KERAS_BACKEND"] == "jax":
    os.environ["JAX_ENABLE_X64"] = "1"

import keras  # noqa: E402
import numpy as np  # noqa: E402

X = np.arange(9.0).reshape(1, 1, 3, 3)  # NCHW, float64
K = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(2, 2, 1, 1)  # HWIO
conv_expected = np.array([[X[0, 0, i:i + 2, j:j + 2].ravel() @ K.ravel() for j in range(2)] for i in range(2)])
conv_t_expected = np.zeros((4, 4))  # stride 1, 'valid': every input cell scatters the kernel
for i in range(3):
    for j in range(3):
        conv_t_expected[i:i + 2, j:j + 2] += X[0, 0, i, j] * K[:, :, 0, 0]
print(f"keras {keras.__version__} on {keras.backend.backend()}")
print("X[0, 0] (float64, NCHW):\n", X[0, 0], "\nK[:, :, 0, 0]:\n", K[:, :, 0, 0])
failed = False
for name, expected, call in (
        ("conv", conv_expected, lambda x, k: keras.ops.conv(x, k, padding="valid", data_format="channels_first")),
        ("conv_transpose", conv_t_expected,
         lambda x, k: keras.ops.conv_transpose(x, k, 1, padding="valid", data_format="channels_first"))):
    print(f"keras.ops.{name}(data_format='channels_first') expected:\n", expected)
    try:
        out = call(keras.ops.convert_to_tensor(X, dtype="float64"), keras.ops.convert_to_tensor(K, dtype="float64"))
        observed = keras.ops.convert_to_numpy(out)[0, 0]
    except Exception as exc:  # noqa: BLE001
        print(f"  observed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
        failed = True
        continue
    same = observed.shape == expected.shape and np.array_equal(observed, expected)
    print("  observed:\n", observed, "" if same else "  <-- differs")
    failed |= not same
if failed:
    print("DEVIATION: float64 channels_first convolution refused (or wrong)")
    sys.exit(1)
print("OK: float64 channels_first as defined")
