"""Beyond 7.2: the general convolution of 7.3 (padding and stride) and 7.4 (channels), with
dilation and groups, and the pooling of 7.5; the conventions where frameworks differ ('same' and
its extra pixel, padding modes, strides with 'same', layouts, group order, padded cells in an
average, ceil sizes), the gradients, and the errors that must be errors.  The definition and the
oracle: ``spec/general.py``."""

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
