"""The capability manifest, probed.

A dtype that an adapter's manifest (``dtypes``) leaves out, on a device it
uses, is tried once on the chapter's first example with the built-in op (else
the book's corr2d); so is a correlation verb in a declared dtype that
``verb_dtypes`` leaves out, with that verb.  If it fails in any way the manifest
is confirmed; if it conforms, the verdict reports an *unexpected pass* so that
the manifest is corrected instead of rotting.  (A
declared dtype that fails is an ordinary failure of the conformance tests; a
declared verb that raises ``NotImplementedError`` fails in ``support.call``.)
"""

import pytest

import spec
from tests import support

PROBE_CASE = "fig_7_2_1"


def test_undeclared_dtype(probe):
    bk = probe.backend
    # The verb verb_dtypes leaves out; else a verb the adapter has: the built-in op, else the book's corr2d.
    op = probe.op or next((v for v in ("conv2d", "corr2d") if bk.verbs is None or v in bk.verbs), "conv2d")
    what = f"{op} in {probe.dtype}" if probe.op else f"{probe.dtype} on {probe.device}"
    manifest = "verb_dtypes" if probe.op else "dtypes"
    try:
        support.check_correlation(probe, spec.find(PROBE_CASE), op)
    except pytest.skip.Exception as exc:  # the verb is not there: nothing was learned about the dtype
        support.note(probe=f"{probe.id}: inconclusive: {op} could not be tried ({str(exc).splitlines()[0][:200]})")
        return
    except (Exception, pytest.fail.Exception) as exc:
        first = (str(exc).splitlines() or [""])[0][:200]
        support.note(probe=f"{probe.id}: {what} confirmed unsupported (tried with "
                           f"{op}: {type(exc).__name__}: {first})")
        return
    support.note(unexpected=f"{probe.id}: {what} is not in the manifest ({manifest}), "
                            f"but {op} on {PROBE_CASE} conforms in it: declare it")
