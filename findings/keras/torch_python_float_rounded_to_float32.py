"""keras-torch: keras.ops.multiply(python_float, float64_tensor) rounds the Python float to float32 first.

keras' torch convert_to_tensor turns a Python float into a float32 (floatx) tensor before torch
multiplies it with the float64 tensor: the product is float64, but of the float32-rounded scalar.
keras-jax and keras-tensorflow keep the scalar weakly typed and give the float64 product.  The book's
update ``kernel -= lr * grad`` in keras.ops (learn_kernel) then steps with lr rounded to float32 in a
float64 run.  Not reported upstream (related: https://github.com/keras-team/keras/issues/23704).

Run: python torch_python_float_rounded_to_float32.py [engine]   (default engine: torch)
Exits 1 while the deviation is present, 0 once it is gone.
"""
import os
import sys

os.environ["KERAS_BACKEND"] = sys.argv[1] if len(sys.argv) > 1 else "torch"
if os.environ["KERAS_BACKEND"] == "jax":
    os.environ["JAX_ENABLE_X64"] = "1"

import keras  # noqa: E402
import numpy as np  # noqa: E402

lr = 0.1
g = np.array([1.0, 3.0])  # float64
expected = lr * g
out = keras.ops.multiply(lr, keras.ops.convert_to_tensor(g, dtype="float64"))
observed = keras.ops.convert_to_numpy(out).astype(np.float64)
print(f"keras {keras.__version__} on {keras.backend.backend()}")
print(f"inputs: python float {lr!r}, float64 tensor {g.tolist()}")
print("expected (float64):", expected.tolist())
print(f"observed ({keras.backend.standardize_dtype(out.dtype)}):", observed.tolist(),
      "  error:", (observed - expected).tolist())
if not np.array_equal(observed, expected):
    print(f"DEVIATION: the Python float was rounded to float32 (np.float32({lr}) = {float(np.float32(lr))!r})")
    sys.exit(1)
print("OK: float64 product")
