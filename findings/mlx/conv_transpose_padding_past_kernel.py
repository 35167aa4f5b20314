"""mx.conv_transpose2d with stride > 1 and padding > dilation * (kernel - 1) returns a result of the wrong size
(or raises), where torch.nn.functional.conv_transpose2d crops `padding` cells from each end of the full result.

mlx/ops.cpp conv_transpose_general passes padding_lo = dilation * (k - 1) - padding, negative here, to
conv_general with input_dilation = stride, and conv_general crops a negative pad from the input *before*
dilating it (whole input cells, not dilated cells).  Found by the suite's generated property
test_generated_transpose_is_the_input_gradient.  Exit 1 while any case differs, 0 once all agree.
"""

import sys

import mlx.core as mx
import numpy as np

X = np.array([1.0, 2.0, 3.0])  # one row of 3 (NHWC 1x1x3x1)
K = np.array([2.0])  # a 1x1 kernel (C_out, kh, kw, C_in) = (1, 1, 1, 1)


def expected(stride, padding, output_padding):
    """Every input cell scatters x * K at stride; output_padding cells at the end; `padding` cropped per end."""
    full = np.zeros((len(X) - 1) * stride + 1 + output_padding)
    full[::stride][:len(X)] = X * K[0]
    return full[padding:len(full) - padding]


print(f"mlx {mx.__version__}; X = {X.tolist()} (1x1x3x1), K = [[2]], stride (1, s), padding (0, p)")
wrong = 0
for stride, padding, output_padding in ((2, 1, 0), (2, 1, 1), (3, 1, 0), (2, 2, 0), (1, 1, 0)):
    want = expected(stride, padding, output_padding)
    try:
        with mx.stream(mx.cpu):
            y = mx.conv_transpose2d(mx.array(X.reshape(1, 1, 3, 1)), mx.array(K.reshape(1, 1, 1, 1)),
                                    stride=(1, stride), padding=(0, padding), output_padding=(0, output_padding))
            mx.eval(y)
        got = np.array(y).ravel()
        ok = got.shape == want.shape and np.array_equal(got, want)
        got = got.tolist()
    except ValueError as exc:
        ok, got = False, f"ValueError: {exc}"
    wrong += not ok
    print(f"s={stride} p={padding} output_padding={output_padding}: expected {want.tolist()}, observed {got}"
          + ("" if ok else "  <-- differs"))
print(f"{wrong} case(s) differ" if wrong else "all cases agree")
sys.exit(1 if wrong else 0)
