"""Beyond 7.2: the general convolution of 7.3 (padding and stride) and 7.4 (channels), with
dilation and groups; the pooling of 7.5; the transposed convolution of 14.10 and its crops.  The
conventions where frameworks differ ('same' and its extra pixel, padding modes, strides with 'same',
layouts, group order, padded cells in an average, ceil sizes, TF's 'SAME' against torch's
output_padding), the gradients, and the errors that must be errors.  The definition and the oracle:
``spec/general.py``."""

import pytest

import spec
from tests import support

GENERAL = spec.cases("conventions", kind="general")
GRADIENTS = [c for c in GENERAL if "expected_grad" in c.data]
ERRORS = spec.cases("conventions", kind="general_error")


@pytest.mark.parametrize("case", GENERAL, ids=lambda c: c.id)
def test_conv_general(target, case):
    support.check_general(target, case)


@pytest.mark.parametrize("case", GRADIENTS, ids=lambda c: c.id)
def test_conv_general_vjp(target, case):
    support.check_general_vjp(target, case)


#: The explicit gradient functions differentiate the convolution, not a padding mode: zero padding only.
BACKPROP = [c for c in GRADIENTS if c.data["params"].get("padding_mode", "zeros") == "zeros"]


@pytest.mark.parametrize("case", BACKPROP, ids=lambda c: c.id)
def test_conv_general_backprop(target, case):
    support.check_general_vjp(target, case, verb="conv_general_backprop")


@pytest.mark.parametrize("case", ERRORS, ids=lambda c: c.id)
def test_conv_general_error(target, case):
    support.check_general_error(target, case)


POOLS = spec.cases("conventions", kind="pool")
POOL_ERRORS = spec.cases("conventions", kind="pool_error")


@pytest.mark.parametrize("case", POOLS, ids=lambda c: c.id)
def test_pool2d(target, case):
    support.check_pool(target, case)


@pytest.mark.parametrize("case", POOL_ERRORS, ids=lambda c: c.id)
def test_pool2d_error(target, case):
    support.check_pool_error(target, case)


TRANSPOSES = spec.cases("conventions", kind="transpose")
TRANSPOSE_ERRORS = spec.cases("conventions", kind="transpose_error")


@pytest.mark.parametrize("case", TRANSPOSES, ids=lambda c: c.id)
def test_conv_transpose(target, case):
    support.check_transpose(target, case)


@pytest.mark.parametrize("case", TRANSPOSE_ERRORS, ids=lambda c: c.id)
def test_conv_transpose_error(target, case):
    support.check_transpose_error(target, case)


ADJOINT = [c for c in GRADIENTS if c.data["params"].get("groups", 1) == 1
           and c.data["params"].get("padding_mode", "zeros") == "zeros"
           and c.data["params"].get("layout", "nchw") == "nchw"]  # conv_transpose's contract is NCHW


@pytest.mark.parametrize("case", ADJOINT, ids=lambda c: c.id)
def test_conv_transpose_is_the_gradient(target, case):
    """The transposed convolution is the adjoint of the convolution: conv_transpose(dY, K), cropped by
    the convolution's pads, is dL/dX of sum(conv(X, K) * dY) (d2l 14.10.3)."""
    support.check_adjoint(target, case)
