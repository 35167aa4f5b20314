"""tinygrad: nn.optim.SGD holds its learning rate in float32, also for float64 parameters.

LARS.__init__ (tinygrad/nn/optim.py) stores ``lr`` as a Tensor of dtype
``least_upper_dtype(dtypes.default_float, dtypes.float32)``: float32 unless the global default float is
changed ("store lr in at least float32 precision").  One step on a float64 weight moves it by
float32(lr) * grad: at lr = 0.03, 2.2e-8 (relative) less than lr * grad, far beyond float64's rounding.
Not reported upstream.

Run: python sgd_learning_rate_float32.py   Exits 1 while the deviation is present, 0 once it is gone.
"""
import sys
from importlib.metadata import version

import numpy as np
from tinygrad import Tensor, dtypes, nn
from tinygrad.helpers import Context

lr = 0.03
w = Tensor([1.0], dtype=dtypes.float64)
opt = nn.optim.SGD([w], lr=lr)
opt.zero_grad()
w.sum().backward()  # gradient [1.0]
with Context(TRAINING=1):
    opt.step()
observed = w.numpy().astype(np.float64)
expected = np.array([1.0 - lr])  # float64: 0.97
print(f"tinygrad {version('tinygrad')}; default float {dtypes.default_float}; lr held as {opt.lr.dtype}")
print(f"one SGD step, lr {lr!r}, float64 weight [1.0], gradient [1.0]")
print("expected (float64):", expected.tolist())
print(f"observed ({w.dtype}):", observed.tolist(), "  error:", (observed - expected).tolist())
if not np.array_equal(observed, expected):
    print(f"DEVIATION: the step used float32(lr) = {float(np.float32(lr))!r}")
    sys.exit(1)
print("OK: the float64 step")
