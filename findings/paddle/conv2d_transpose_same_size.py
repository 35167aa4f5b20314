"""paddle.nn.functional.conv2d_transpose(padding='SAME', stride=2) does not give TensorFlow's 'SAME'.

TensorFlow's (and ONNX SAME_UPPER's) transposed 'SAME' output is n*s cells: the full scatter,
(n-1)*s + k cells, cropped total//2 at the beginning and the rest at the end.  Paddle's 'SAME' crops
the pads of a *forward* 'SAME' convolution over the transposed convolution's input instead (and drops
the dilation), so a 3x3 input at stride 2 with a 3x3 kernel gives 5x5, not 6x6; a 2x2 input happens to
agree (the suite's fixed cases conv_t_k3s2_same and conv_t_k4s2_same, which pass).  With stride 1 and
dilation 2 the size agrees and the numbers do not.  Exit 1 while
the deviation is present, 0 once it is gone.
"""
import sys

import numpy as np
import paddle
import paddle.nn.functional as F

X = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)


def reference(X, K, s, d):
    """Scatter each input cell's kernel-weighted copy (no flip, taps d apart), then TensorFlow's SAME crop."""
    n, k = X.shape[2], K.shape[2]
    full = (n - 1) * s + d * (k - 1) + 1
    Y = np.zeros((full, full))
    for i in range(n):
        for j in range(n):
            Y[i * s:i * s + d * (k - 1) + 1:d, j * s:j * s + d * (k - 1) + 1:d] += X[0, 0, i, j] * K[0, 0]
    total = max(full - n * s, 0)
    lo = total // 2
    return Y[lo:lo + n * s, lo:lo + n * s]


present = False
print(f"paddle {paddle.__version__}")
K = np.array([[[[1.0, 2.0, 0.0], [-1.0, 1.0, 3.0], [2.0, 0.0, 1.0]]]])
for s, d in ((2, 1), (1, 2)):
    expected = reference(X, K, s, d)
    got = F.conv2d_transpose(paddle.to_tensor(X), paddle.to_tensor(K), stride=s, dilation=d,
                             padding="SAME").numpy()[0, 0]
    print("X:\n", X[0, 0], "\nK:\n", K[0, 0], f"\nstride={s}, dilation={d}, padding='SAME'")
    print(f"expected {expected.shape} (TensorFlow's SAME: n*s):\n", expected)
    print(f"observed {got.shape}:\n", got)
    present |= got.shape != expected.shape or not np.array_equal(got, expected)
if not present:
    print("conforms: the deviation is gone")
    sys.exit(0)
print("DEVIATION: conv2d_transpose 'SAME' is not n*s cropped total//2 at the beginning")
sys.exit(1)
