"""Adapters that try to pass without conforming, and adapters whose environment
hooks raise: each must end in NOT CONFORMANT, NO VERDICT or a usage error,
never in CONFORMANT and never in an INTERNALERROR.  (``test_sealed_runs.py``)
"""

from __future__ import annotations

import os

import pytest

from backends.base import VERBS, Backend
from backends.numpy import NumpyBackend
from tests.meta.broken import FlushesSubnormalsUndeclared


class ImplementsNothing(Backend):
    """Converts data and nothing else; declares no manifest: every verb raises NotImplementedError."""

    module = "numpy"

    def asarray(self, a, *, dtype, device):
        return self.lib.array(a, dtype=dtype)

    def to_numpy(self, x):
        return self.lib.asarray(x)

    def device_of(self, x):
        return "cpu"

    def dtype_of(self, x):
        return str(x.dtype)


class DeclaresNothingItHas(NumpyBackend):
    """Declares an empty manifest: every verb is outside it, so every check skips."""

    verbs = ()


class OnlyGPU(NumpyBackend):
    """Declares GPU dtypes only; on a machine without a GPU nothing can run."""

    dtypes = {"gpu": ("float32", "float64")}

    def gpu_unavailable_reason(self):
        return "no GPU here (simulated)"


class SkipsItself(NumpyBackend):
    """Calls pytest.skip() in its built-in op instead of listing a known deviation."""

    def conv2d(self, X, K):
        pytest.skip("conv2d is flaky on this framework")


class XfailsItself(NumpyBackend):
    """Calls pytest.xfail() in corr2d instead of listing a known deviation."""

    def corr2d(self, X, K):
        pytest.xfail("corr2d is known to be off")


class SkipsInTheHarnessWords(NumpyBackend):
    """Calls pytest.skip() with the words of the harness's own skip for a declared gap: the words do not
    make it one (the verdict reads skips by their words, because under xdist it sees them only so)."""

    def conv2d(self, X, K):
        import os

        import pytest

        pytest.skip(os.environ.get("CONV_META_SKIP_WORDS", "unsupported, as the adapter declares")
                    + ": valid (it says so itself)")


class SkipsInNumerics(NumpyBackend):
    """Skips from its numerics hook (the test's setup)."""

    def numerics(self, device, dtype, precision="strict"):
        if dtype == "float16":
            pytest.skip("float16 is not interesting")
        return super().numerics(device, dtype, precision)


class TeardownLeak(NumpyBackend):
    """Leaks a reported setting after one test: the leak check fails it in teardown."""

    _state = {"counter": 0}

    def precision_settings(self):
        return {"counter": self._state["counter"]}

    def corr2d(self, X, K):
        self._state["counter"] += 1
        return super().corr2d(X, K)


class VersionRaises(NumpyBackend):
    """Its version() raises: the header and the record must not die of it."""

    def version(self):
        raise RuntimeError("no version here")


class MovesTheResults(NumpyBackend):
    """Points CONV_CONFORMANCE_RESULTS elsewhere in the middle of the run."""

    def conv2d(self, X, K):
        os.environ["CONV_CONFORMANCE_RESULTS"] = os.environ.get("CC_META_ELSEWHERE", "/nonexistent/elsewhere")
        return super().conv2d(X, K)


class InitRaises(NumpyBackend):
    def __init__(self):
        raise RuntimeError("cannot construct")


class LoadRaises(NumpyBackend):
    def load(self):
        raise KeyError("load went wrong")


class GPUReasonRaises(NumpyBackend):
    dtypes = {"cpu": ("float32", "float64"), "gpu": ("float32",)}

    def gpu_unavailable_reason(self):
        raise RuntimeError("driver query failed")


class LoadSkips(NumpyBackend):
    def load(self):
        pytest.skip("not today")


class NoTrainableDtype(NumpyBackend):
    train_dtypes = ()


class UnknownDtype(NumpyBackend):
    dtypes = {"cpu": ("float32", "float8")}


class AnotherReference(NumpyBackend):
    """A second, conforming adapter: a second env of a matrix run."""


class VerbDtypesNotAMapping(NumpyBackend):
    verb_dtypes = ("conv2d", "float32")


class VerbDtypesUnknownVerb(NumpyBackend):
    verb_dtypes = {"conv3d": ("float32",)}


class VerbDtypesUndeclaredVerb(NumpyBackend):
    verbs = ("corr2d",)
    verb_dtypes = {"conv2d": ("float32",)}


class VerbDtypesUndeclaredDtype(NumpyBackend):
    verb_dtypes = {"conv2d": ("float32", "bfloat16")}


class NeitherCoreVerbAnywhere(NumpyBackend):
    """Declares both core verbs, each in no dtype: every core check skips, with the manifest's word."""

    verb_dtypes = {"conv2d": (), "corr2d": ()}


class CircularUnsupported(NumpyBackend):
    """Declares circular padding unsupported, and raises for it: the declaration is confirmed."""

    conventions = {**NumpyBackend.conventions, "circular": "unsupported: no wrap mode in this framework"}

    def conv_general(self, X, K, **params):
        if params["padding_mode"] == "circular":
            raise NotImplementedError("circular padding")
        return super().conv_general(X, K, **params)

    def conv_general_vjp(self, X, K, dY, **params):
        if params["padding_mode"] == "circular":
            raise ValueError("circular padding")
        return super().conv_general_vjp(X, K, dY, **params)


class CircularUnsupportedButWorks(NumpyBackend):
    """Declares circular padding unsupported, but gives it right: an unexpected pass."""

    conventions = {**NumpyBackend.conventions, "circular": "unsupported: no wrap mode in this framework"}


class CircularUnsupportedButWrong(NumpyBackend):
    """Declares circular padding unsupported, and returns zero padding's numbers for it: a wrong number
    is a failure, whatever the declaration."""

    conventions = {**NumpyBackend.conventions, "circular": "unsupported: no wrap mode in this framework"}

    def conv_general(self, X, K, **params):
        if params["padding_mode"] == "circular":
            params = {**params, "padding_mode": "zeros"}
        return super().conv_general(X, K, **params)


class FlushesSubnormalsDeclared(FlushesSubnormalsUndeclared):
    """Flushes float32 subnormal inputs and results to zero (DAZ and FTZ), and says so: conformant."""

    flushes_subnormals = {"cpu": ("float32",)}


class DeclaresFlushButKeeps(NumpyBackend):
    """Declares float32 subnormals flushed, but keeps them: told so, not failed."""

    flushes_subnormals = {"cpu": ("float32",)}


class FlushesAnUndeclaredDtype(NumpyBackend):
    flushes_subnormals = {"cpu": ("bfloat16",)}


class _WrittenForContract1(NumpyBackend):
    """An adapter written when the contract had the chapter's verbs only, which declared ``verbs = VERBS``
    then: the verbs added since are not its own."""

    verbs = VERBS

    def conv_general(self, *args, **kwargs):
        raise NotImplementedError

    conv_general_vjp = conv_general_backprop = pool2d = conv_transpose = conv_general


class DeclaresNoContract(_WrittenForContract1):
    contract = None


class DeclaresContract1(_WrittenForContract1):
    contract = 1

    def conv_general(self, *args, **kwargs):  # wrong, but not asked of a contract-1 adapter
        return super(_WrittenForContract1, self).conv_general(*args, **kwargs) + 1


class ClaimsContract2ButLacksItsVerbs(_WrittenForContract1):
    contract = 2


class ClaimsAFutureContract(NumpyBackend):
    contract = 99


class ContractAsAString(NumpyBackend):
    contract = "2"


#: A framework the suite does not know: its process-wide setting and its global generator.
UNKNOWN_FRAMEWORK = {"mode": "eager", "rng": [0]}


class _ChangesUnknownGlobalState(NumpyBackend):
    """Leaves a process-wide setting of a framework the suite cannot know changed (and draws from its global
    generator) in conv2d."""

    def conv2d(self, X, K):
        UNKNOWN_FRAMEWORK["mode"] = "graph" if UNKNOWN_FRAMEWORK["mode"] == "eager" else "eager"
        UNKNOWN_FRAMEWORK["rng"][0] += 1
        return super().conv2d(X, K)


class NamesItsGlobalState(_ChangesUnknownGlobalState):
    def global_state(self):
        return {"unknown.mode": UNKNOWN_FRAMEWORK["mode"], "rng unknown.random": list(UNKNOWN_FRAMEWORK["rng"])}


class KeepsItsGlobalStateQuiet(_ChangesUnknownGlobalState):
    """The control: the same mistake, its state not named; the suite cannot see it."""


class GlobalStateRaises(NumpyBackend):
    def global_state(self):
        raise RuntimeError("cannot read")
