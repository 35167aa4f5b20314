"""tinygrad: a basic __setitem__ into a realized Tensor of ONE element writes nothing.

The book's corr2d (d2l 7.2) fills Y = zeros(nh-kh+1, nw-kw+1) with Y[i, j] = (X[i:i+h, j:j+w] * K).sum().
When the kernel is as large as the input, Y is (1, 1) and the assignment is silently lost: Y stays 0.
Any Tensor of one element behaves the same ((1,), (1, 1), (1, 1, 1)); one of two elements does not.
(In tinygrad 0.14 the view Y[0, 0] is RESHAPE(RESHAPE(BUFFER)), which has "buffer identity", so
Tensor.assign stores into the view alone instead of replacing the buffer under Y.)

Exits 1 while the deviation is present, 0 once it is gone.  Needs only tinygrad and numpy.
"""

import sys

import numpy as np
from tinygrad import Tensor

X_np = np.arange(16, dtype=np.float32).reshape(4, 4)
K_np = np.array([[1, -1, 0, 2], [0, 1, 1, -1], [2, 0, -1, 1], [1, 1, 0, -2]], dtype=np.float32)
X, K = Tensor(X_np, device="CPU").realize(), Tensor(K_np, device="CPU").realize()
print("X =\n", X_np, "\nK =\n", K_np)

# The book's corr2d, verbatim in tinygrad: here a single output position.
h, w = K.shape
Y = Tensor.zeros(X.shape[0] - h + 1, X.shape[1] - w + 1, device="CPU").contiguous().realize()
for i in range(Y.shape[0]):
    for j in range(Y.shape[1]):
        Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
observed = Y.numpy()
expected = np.array([[(X_np * K_np).sum()]], dtype=np.float32)
print("corr2d(X, K): expected", expected.tolist(), "observed", observed.tolist())

# The same with a plain Python number, and with two elements for contrast.
one, two = Tensor.zeros(1, device="CPU").contiguous().realize(), Tensor.zeros(2, device="CPU").contiguous().realize()
one[0] = 5.0
two[0] = 5.0
print("zeros(1)[0] = 5 ->", one.tolist(), "   zeros(2)[0] = 5 ->", two.tolist())

wrong = not np.array_equal(observed, expected) or one.tolist() != [5.0]
print("DEVIATION PRESENT" if wrong else "fixed: the one-element setitem writes")
sys.exit(1 if wrong else 0)
