"""paddle.nn.functional.conv2d(padding='SAME', dilation=2) computes an undilated convolution.

TensorFlow's 'SAME' rule with a dilated kernel: the effective kernel is d*(k-1)+1 wide, out = ceil(n/s),
total pad = (out-1)*s + d*(k-1) + 1 - n, the extra pixel at the end.  For a 4x4 input, a 2x2 kernel and
dilation 2 that is pads (1, 1) on each axis.  Paddle's SAME path resets the dilation to 1 (and pads for
the undilated kernel), so the output has the right shape and other numbers.  Explicit pads with the same
dilation give the right numbers.  Exit 1 while the deviation is present, 0 once it is gone.
"""
import sys

import numpy as np
import paddle
import paddle.nn.functional as F

X = np.arange(1, 17, dtype=np.float64).reshape(1, 1, 4, 4)
K = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
d = 2


def reference(X, K, d):
    """Cross-correlation with TensorFlow's SAME pads for the dilated kernel, in NumPy loops."""
    n, k = X.shape[2], K.shape[2]
    total = max((n - 1) + d * (k - 1) + 1 - n, 0)
    lo, hi = total // 2, total - total // 2
    Xp = np.pad(X[0, 0], ((lo, hi), (lo, hi)))
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            out[i, j] = sum(Xp[i + a * d, j + e * d] * K[0, 0, a, e] for a in range(k) for e in range(k))
    return out


expected = reference(X, K, d)
got = F.conv2d(paddle.to_tensor(X), paddle.to_tensor(K), padding="SAME", dilation=d).numpy()[0, 0]
explicit = F.conv2d(paddle.to_tensor(X), paddle.to_tensor(K), padding=[[0, 0], [0, 0], [1, 1], [1, 1]],
                    dilation=d).numpy()[0, 0]
print(f"paddle {paddle.__version__}")
print("X:\n", X[0, 0], "\nK:\n", K[0, 0], f"\ndilation={d}, padding='SAME'")
print("expected (TensorFlow's SAME rule, dilated kernel):\n", expected)
print("observed F.conv2d(padding='SAME', dilation=2):\n", got)
print("F.conv2d(padding=[[0,0],[0,0],[1,1],[1,1]], dilation=2) for comparison:\n", explicit)
if np.array_equal(got, expected):
    print("conforms: the deviation is gone")
    sys.exit(0)
print("DEVIATION: 'SAME' with dilation > 1 ignores the dilation")
sys.exit(1)
