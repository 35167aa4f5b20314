"""MXNet: the SGD update (gluon.Trainer 'sgd', the sgd_update operator) takes its learning rate as a C++
float, also for float64 weights.

SGDParam declares ``float lr`` (src/operator/optimizer_op-inl.h): the Python float is rounded to float32
before the float64 update.  One step on a float64 weight moves it by float32(lr) * grad: at lr = 0.03,
2.2e-8 (relative) less than lr * grad, far beyond float64's rounding.  Not reported upstream (MXNet 1.9.1
is the last release).

Run: python sgd_learning_rate_float32.py   Exits 1 while the deviation is present, 0 once it is gone.
"""
import sys

import mxnet as mx
import numpy as np

lr = 0.03
w = mx.nd.array([1.0], dtype="float64")
grad = mx.nd.array([1.0], dtype="float64")
mx.nd.sgd_update(w, grad, lr=lr, wd=0.0, out=w)
observed = w.asnumpy().astype(np.float64)
expected = np.array([1.0 - lr])  # float64: 0.97
print(f"mxnet {mx.__version__}")
print(f"one sgd_update, lr {lr!r}, float64 weight [1.0], gradient [1.0]")
print("expected (float64):", expected.tolist())
print(f"observed ({w.dtype.__name__}):", observed.tolist(), "  error:", (observed - expected).tolist())
if not np.array_equal(observed, expected):
    print(f"DEVIATION: the step used float32(lr) = {float(np.float32(lr))!r}")
    sys.exit(1)
print("OK: the float64 step")
