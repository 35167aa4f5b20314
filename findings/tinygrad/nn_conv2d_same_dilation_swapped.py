"""tinygrad: nn.Conv2d(padding='same') gives each axis the OTHER axis's dilation.

Not a check of the suite (the adapter's conv_general uses Tensor.conv2d with explicit pads, not this
layer); found while choosing the 'same' path.  Conv2d builds its pads from kernel_size[::-1] (pads
are ordered last axis first) but zips them with dilation unreversed, so with dilation (2, 1) the
width is padded for dilation 2 and the height for dilation 1: a (5, 5) input gives (3, 7), not (5, 5).
Fixed upstream after 0.14 by https://github.com/tinygrad/tinygrad/pull/17805.

Exits 1 while the deviation is present, 0 once it is gone.  Needs only tinygrad and numpy.
"""

import sys

import numpy as np
from tinygrad import Tensor, nn

x_np = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
conv = nn.Conv2d(1, 1, (3, 3), padding="same", dilation=(2, 1), bias=False)
conv.weight = Tensor(np.ones((1, 1, 3, 3), np.float32))
y = conv(Tensor(x_np)).numpy()
print("X (1, 1, 5, 5):\n", x_np[0, 0], "\nkernel ones (3, 3), dilation (2, 1), padding='same'")
print("pads (left, right, top, bottom):", conv.padding, "  expected (1, 1, 2, 2)")
print("output shape:", y.shape, "  expected (1, 1, 5, 5)")
wrong = y.shape != (1, 1, 5, 5)
print("DEVIATION PRESENT" if wrong else "fixed: 'same' keeps the shape")
sys.exit(1 if wrong else 0)
