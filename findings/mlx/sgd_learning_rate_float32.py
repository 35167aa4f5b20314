"""MLX: optimizers.SGD holds its learning rate as a float32 mx.array, also for float64 parameters.

Optimizer.learning_rate's setter stores ``mx.array(learning_rate)``, and a Python float becomes a float32
array.  One step on a float64 weight moves it by float32(lr) * grad: at lr = 0.03, 2.2e-8 (relative) less
than lr * grad, far beyond float64's rounding.  Not reported upstream.

Run: python sgd_learning_rate_float32.py   Exits 1 while the deviation is present, 0 once it is gone.
"""
import sys
from importlib.metadata import version

import mlx.core as mx
import mlx.optimizers as optim
import numpy as np

lr = 0.03
with mx.stream(mx.cpu):  # float64 lives on the CPU only
    params = {"w": mx.array([1.0], dtype=mx.float64)}
    grads = {"w": mx.array([1.0], dtype=mx.float64)}
    opt = optim.SGD(learning_rate=lr)
    params = opt.apply_gradients(grads, params)
    observed = np.array(params["w"]).astype(np.float64)
expected = np.array([1.0 - lr])  # float64: 0.97
print(f"mlx {version('mlx')}; learning rate held as {opt.learning_rate.dtype}")
print(f"one SGD step, lr {lr!r}, float64 weight [1.0], gradient [1.0]")
print("expected (float64):", expected.tolist())
print(f"observed ({params['w'].dtype}):", observed.tolist(), "  error:", (observed - expected).tolist())
if not np.array_equal(observed, expected):
    print(f"DEVIATION: the step used float32(lr) = {float(np.float32(lr))!r}")
    sys.exit(1)
print("OK: the float64 step")
