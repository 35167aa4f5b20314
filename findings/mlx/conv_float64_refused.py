"""MLX's CPU convolution refuses float64 for a dilated kernel, groups > 1, or a strided transposed
convolution (input dilation), each of which float16, bfloat16 and float32 take.

mlx/backend/cpu/conv.cpp sends those to its direct-loop path, whose dtype dispatch (dispatch_slow_conv_type)
knows float32, float16 and bfloat16 only: "[Convolution::eval] got unsupported data type."  The same
shapes in float32 run.  Exit 1 while any of them raises in float64, 0 once all three run.
"""

import sys

import mlx.core as mx
import numpy as np

X = np.arange(18.0).reshape(1, 3, 3, 2)  # NHWC: one 3x3 image, two channels
CASES = {
    "mx.conv2d(dilation=2), weight ones (2, 2, 2, 2)":
        lambda x, dt: mx.conv2d(x, mx.ones((2, 2, 2, 2), dt), dilation=2),
    "mx.conv2d(groups=2), weight ones (2, 1, 1, 1)": lambda x, dt: mx.conv2d(x, mx.ones((2, 1, 1, 1), dt), groups=2),
    "mx.conv_transpose2d(stride=2), weight ones (1, 1, 1, 2)":
        lambda x, dt: mx.conv_transpose2d(x, mx.ones((1, 1, 1, 2), dt), stride=2),
}

print(f"mlx {mx.__version__}; X (NHWC 1x3x3x2) = arange(18)")
refused = 0
for what, op in CASES.items():
    for dtype in (mx.float32, mx.float64):
        try:
            with mx.stream(mx.cpu):
                y = op(mx.array(X, dtype=dtype), dtype)
                mx.eval(y)
            print(f"{what} in {dtype}: ran, shape {y.shape}, first values {np.array(y).ravel()[:4].tolist()}")
        except Exception as exc:  # noqa: BLE001  (MLX raises ValueError/RuntimeError here)
            print(f"{what} in {dtype}: {type(exc).__name__}: {exc}")
            refused += dtype == mx.float64
print(f"expected: every case runs in float64 as in float32; observed: {refused} of {len(CASES)} refused in float64")
sys.exit(1 if refused else 0)
