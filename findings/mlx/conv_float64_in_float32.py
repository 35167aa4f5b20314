"""MLX's CPU convolution takes float64 arrays and returns float64, but computes in float32.

mlx/backend/cpu/conv.cpp (explicit_gemm_conv_ND_cpu, its path for groups=1 and no dilation) copies the
input and the weight to float32 and calls cblas_sgemm, then casts the result back to float64.  So
mx.conv2d, and nn.Conv2d whose forward it is, agree with the exact float64 result to float32 precision
only.  Exit 1 while that is so, 0 once float64 is computed in float64.
"""

import sys

import mlx.core as mx
import numpy as np

# One image 2x3, one channel (NHWC), a 1x2 kernel of ones: each output is the sum of two neighbours.
X = np.array([[1 + 2.0**-30, 1.0, 2.0**-40], [3.0, 1 - 2.0**-40, 0.1]]).reshape(1, 2, 3, 1)
K = np.ones((1, 1, 2, 1))  # (C_out, kh, kw, C_in)
expected = X[0, :, :-1, 0] + X[0, :, 1:, 0]  # in float64: one rounding per sum of two terms

with mx.stream(mx.cpu):
    y = mx.conv2d(mx.array(X, dtype=mx.float64), mx.array(K, dtype=mx.float64))
    mx.eval(y)
observed = np.array(y)[0, :, :, 0]

np.set_printoptions(precision=17)
print(f"mlx {mx.__version__}; X (float64, NHWC 1x2x3x1) =\n{X[0, :, :, 0]}\nK = [[1, 1]] (float64)")
print(f"result dtype: {y.dtype}")
print(f"expected mx.conv2d(X, K):\n{expected}\nobserved:\n{observed}")
print(f"max |error| {np.abs(observed - expected).max():.3g} (float64 rounds each sum to ~2e-16 relative)")
wrong = not np.array_equal(observed, expected)
print("DEVIATION: the float64 convolution is computed in float32" if wrong else "float64 convolution holds float64")
sys.exit(1 if wrong else 0)
