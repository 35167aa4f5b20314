"""keras-torch: keras.ops.matmul of two float64 tensors returns float32 (computed in float32).

keras' torch matmul takes its dtype from keras.backend.result_type, which maps float64 to float32 on
every engine but TensorFlow; keras-jax and keras-tensorflow return float64.  The chapter's exercise 4
(cross-correlation as one matrix product, corr2d_matmul) is then silently float32 in a float64 run.
Upstream: https://github.com/keras-team/keras/issues/23704

Run: python torch_matmul_float64_returns_float32.py [engine]   (default engine: torch)
Exits 1 while the deviation is present, 0 once it is gone.
"""
import os
import sys

os.environ["KERAS_BACKEND"] = sys.argv[1] if len(sys.argv) > 1 else "torch"
if os.environ["KERAS_BACKEND"] == "jax":
    os.environ["JAX_ENABLE_X64"] = "1"

import keras  # noqa: E402
import numpy as np  # noqa: E402

A = np.array([[1.0, 1e-12], [0.0, 1.0]])  # float64
B = np.array([[1.0], [1.0]])
expected = A @ B
a, b = (keras.ops.convert_to_tensor(x, dtype="float64") for x in (A, B))
out = keras.ops.matmul(a, b)
observed = keras.ops.convert_to_numpy(out)
dtype = keras.backend.standardize_dtype(out.dtype)
print(f"keras {keras.__version__} on {keras.backend.backend()}")
print("A (float64):\n", A, "\nB (float64):\n", B)
print("expected: float64", expected.ravel().tolist())
print(f"observed: {dtype}", observed.astype(np.float64).ravel().tolist())
if dtype != "float64" or not np.array_equal(observed.astype(np.float64), expected):
    print("DEVIATION: keras.ops.matmul of float64 inputs is not float64")
    sys.exit(1)
print("OK: float64 in, float64 out")
