"""paddle.nn.functional.avg_pool2d(exclusive=False) with asymmetric padding divides by the wrong count.

With exclusive=False (torch's count_include_pad=True) an average divides the window's sum by the number of
its cells inside the padded input, padded cells included.  With padding [top, bottom, left, right] where
bottom > top (or 'SAME', whose pads are asymmetric for an odd total), a window that reaches into the
trailing pad is divided by fewer cells: Paddle clips it to the input plus the *leading* pad.  Symmetric pads
are right.  Reported as PaddlePaddle/Paddle#54404 (closed); still present here.  Exit 1 while the deviation
is present, 0 once it is gone.
"""
import sys

import numpy as np
import paddle
import paddle.nn.functional as F

X = np.array([[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]]])
k, s = 2, 1


def reference(X, top, bottom, left, right):
    """Window sums over the zero-padded input, each divided by its cells inside the padded input."""
    Xp = np.pad(X[0, 0], ((top, bottom), (left, right)))
    oh, ow = (Xp.shape[0] - k) // s + 1, (Xp.shape[1] - k) // s + 1
    return np.array([[Xp[i * s:i * s + k, j * s:j * s + k].sum() / (k * k) for j in range(ow)] for i in range(oh)])


present = False
print(f"paddle {paddle.__version__}")
for pads in ([0, 1, 0, 1], [1, 1, 1, 1], "SAME"):
    expected = reference(X, *((0, 1, 0, 1) if pads == "SAME" else pads))  # TF's SAME: the extra pixel at the end
    got = F.avg_pool2d(paddle.to_tensor(X), kernel_size=k, stride=s, padding=pads, exclusive=False).numpy()[0, 0]
    ok = got.shape == expected.shape and np.allclose(got, expected)
    present |= not ok
    print(f"X:\n{X[0, 0]}\nkernel_size={k}, stride={s}, padding={pads!r}, exclusive=False")
    print(f"expected (divide by the window's cells in the padded input):\n{expected}\nobserved:\n{got}\n"
          f"{'agrees' if ok else 'DIFFERS'}\n")
if not present:
    print("conforms: the deviation is gone")
    sys.exit(0)
print("DEVIATION: avg_pool2d(exclusive=False) with asymmetric pads divides the last windows by too few cells")
sys.exit(1)
