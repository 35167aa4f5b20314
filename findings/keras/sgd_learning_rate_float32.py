"""Keras 3: optimizers.SGD holds its learning rate in a floatx (float32) variable, also for float64 weights.

BaseOptimizer._build_learning_rate stores a Python-float learning rate as
``backend.Variable(learning_rate, dtype=backend.floatx())``: float32 unless the global floatx is changed.
One step on a float64 weight then moves it by float32(lr) * grad: at lr = 0.03, 2.2e-8 (relative) less
than lr * grad, far beyond float64's rounding.  On every engine (torch, jax, tensorflow) and in
tf.keras (Keras 3 inside TensorFlow 2.21).  Not reported upstream.

Run: python sgd_learning_rate_float32.py   (engine: KERAS_BACKEND, else the first of torch, jax, tensorflow
installed).  Exits 1 while the deviation is present, 0 once it is gone.
"""
import importlib.util
import os
import sys

if "KERAS_BACKEND" not in os.environ:
    os.environ["KERAS_BACKEND"] = next(e for e in ("torch", "jax", "tensorflow") if importlib.util.find_spec(e))
if os.environ["KERAS_BACKEND"] == "jax":
    os.environ["JAX_ENABLE_X64"] = "1"

import keras  # noqa: E402
import numpy as np  # noqa: E402

lr = 0.03
w = keras.Variable(np.array([1.0]), dtype="float64")
grad = keras.ops.convert_to_tensor(np.array([1.0]), dtype="float64")
keras.optimizers.SGD(learning_rate=lr).apply_gradients([(grad, w)])
observed = keras.ops.convert_to_numpy(w.value).astype(np.float64)
expected = np.array([1.0 - lr])  # float64: 0.97
print(f"keras {keras.__version__} on {keras.backend.backend()}; floatx {keras.config.floatx()}")
print(f"one SGD step, lr {lr!r}, float64 weight [1.0], gradient [1.0]")
print("expected (float64):", expected.tolist())
print(f"observed ({w.dtype}):", observed.tolist(), "  error:", (observed - expected).tolist())
if not np.array_equal(observed, expected):
    print(f"DEVIATION: the step used float32(lr) = {float(np.float32(lr))!r}")
    sys.exit(1)
print("OK: the float64 step")
