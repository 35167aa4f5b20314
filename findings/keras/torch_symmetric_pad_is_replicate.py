"""keras-torch: keras.ops.pad(mode="symmetric") pads like "replicate" (edge), not symmetric.

The torch engine maps mode="symmetric" to torch's "replicate"; keras-jax and keras-tensorflow mirror
the edge (NumPy's "symmetric").  A convolution over a symmetric pad of 2 or more is then wrong.
Upstream: https://github.com/keras-team/keras/pull/23230 (the fix, merged after keras 3.15.1).

Run: python torch_symmetric_pad_is_replicate.py [engine]   (default engine: torch)
Exits 1 while the deviation is present, 0 once it is gone.
"""
import os
import sys

os.environ["KERAS_BACKEND"] = sys.argv[1] if len(sys.argv) > 1 else "torch"

import keras  # noqa: E402
import numpy as np  # noqa: E402

X = np.array([[[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]]], dtype=np.float32)  # NCHW, 2 x 4
widths = ((0, 0), (0, 0), (2, 2), (2, 2))
expected = np.pad(X, widths, mode="symmetric")
observed = keras.ops.convert_to_numpy(keras.ops.pad(keras.ops.convert_to_tensor(X), widths, mode="symmetric"))
print(f"keras {keras.__version__} on {keras.backend.backend()}")
print("input X[0, 0]:\n", X[0, 0])
print("pad_width:", widths, "mode='symmetric'")
print("expected (numpy.pad symmetric) [0, 0]:\n", expected[0, 0])
print("observed (keras.ops.pad) [0, 0]:\n", observed[0, 0])
if observed.shape != expected.shape or not np.array_equal(observed, expected):
    print("DEVIATION: keras.ops.pad(mode='symmetric') does not mirror the edge"
          + (" (this is 'edge'/replicate padding)" if np.array_equal(observed, np.pad(X, widths, mode="edge")) else ""))
    sys.exit(1)
print("OK: symmetric padding as numpy.pad")
