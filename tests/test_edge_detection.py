"""7.2.3 Object Edge Detection in Images: the 6x8 edge image and its transpose."""

import pytest

import spec
from tests import support


@pytest.mark.parametrize("case, op", support.case_params(spec.by_op("edge_detection")))
def test_edge_detection(target, case, op):
    support.check_correlation(target, case, op)
