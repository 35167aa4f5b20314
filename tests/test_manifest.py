"""The capability manifest, probed.

A dtype that an adapter's manifest (``dtypes``) leaves out, on a device it
uses, is tried once on the chapter's first example with the built-in op.  If it
fails in any way the manifest is confirmed; if it conforms, the verdict reports
an *unexpected pass* so that the manifest is corrected instead of rotting.  (A
declared dtype that fails is an ordinary failure of the conformance tests; a
declared verb that raises ``NotImplementedError`` fails in ``support.call``.)
"""

import pytest

import spec
from tests import support

PROBE_CASE, PROBE_OP = "fig_7_2_1", "conv2d"


def test_undeclared_dtype(probe):
    try:
        support.check_correlation(probe, spec.find(PROBE_CASE), PROBE_OP)
    except (Exception, pytest.fail.Exception, pytest.skip.Exception) as exc:
        first = (str(exc).splitlines() or [""])[0][:200]
        support.note(probe=f"confirmed unsupported: {type(exc).__name__}: {first}")
        return
    support.note(unexpected=f"{probe.id}: {probe.dtype} on {probe.device} is not in the manifest (dtypes), "
                            f"but {PROBE_OP} on {PROBE_CASE} conforms in it: declare it")
