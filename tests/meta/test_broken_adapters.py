"""Every deliberately broken adapter makes the suite fail, naming its mistake;
the reference adapter passes.  A check that no broken adapter fails is a defect."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: adapter -> words the failure report must contain.
CATALOGUE = {
    "FlippedKernel": "kernel looks flipped: this is convolution, not cross-correlation",
    "TransposedKernel": "kernel looks transposed",
    "OneRowShort": "1 row short",
    "SamePadding": "'SAME' padding where 'VALID' is meant",
    "TransposedOutput": "output transposed",
    "BiasIgnored": "the bias looks ignored",
    "BiasTwice": "the bias looks added twice",
    "Float64InFloat32": "values agree only to float32 precision: float64 computed in float32?",
    "RoundsThroughFloat16": "values agree only to float16 precision",
    "ModifiesInput": "modified its input X in place",
    "MeanLoss": "the loop uses the mean of the squared errors",
    "HalfMeanLoss": "the loop uses half the mean (DJL's L2Loss)",
    "WrongLearningRate": "trajectory leaves its error bound; the steps follow a learning rate of 0.01 (0.3333 x",
    "WrongGradient": "dZ/dX",
    "WrongDevice": "the result lives on gpu, but cpu was asked for",
    "RaisesOnUse": "RuntimeError: simulated crash inside the framework's conv op",
    "ReturnsNaN": "value(s) are NaN or inf",
    "ReturnsInf": "value(s) are NaN or inf, first at (0, 0)",
    "ReturnsList": "the adapter returned list, which it cannot read back as an array",
    "WrongDtype": "the result is float32, but the inputs were float16",
    "SloppyOnRandomValues": "values agree only to float16 precision",
    "EmptyForLargeKernel": "has no valid position, but the adapter returned an array of shape (0, 0)",
    "BiasNotRegistered": "registers parameters {'weight': (1, 2)} with the module system",
    "SquareKernel": "(a non-square kernel handled as square)",
    "LeavesOutputOnCPU": "the result lives on cpu, but gpu was asked for",
    "DeclaresMatmulButLacksIt": "corr2d_matmul is declared in the adapter's manifest (verbs) but raises",
    "TF32LeftOn": "values agree only to 11-bit precision: float32 computed in TF32",
    "SwitchDoesNotTake": "PrecisionNotApplied: simulated allow_tf32 reads True after it was set to False",
    "Nondeterministic": "the same computation run twice gave different bits, although Nondeterministic promises",
    "NaNLosses": "losses: 10 value(s) are NaN or inf, first at (0,)",
    "LearnOverwritesY": "learn_kernel: modified its input Y in place",
    "ReceptiveFieldOverwritesK1": "receptive_field: modified its input K1 in place",
    # Its first failure: the initial kernel drawn from NumPy's legacy global generator.
    "IgnoresSeed": "global RNG state: numpy.random (legacy global) was",
    "SameStartForEverySeed": "the seed is ignored (a fixed start)",
    "SeedsTheGlobalGenerator": "global RNG state: numpy.random (legacy global) was",
    "LeavesErrstate": "the test left global state changed (the suite's own snapshot, not the adapter's): "
                      "numpy.geterr()",
    "MeanInReceptiveField": "; the gradient of Z.mean() (1/9 of that of Z.sum())",
    "LeftRightFlippedKernel": "kernel looks flipped left-right (columns reversed)",
    "ConstantOffset": "values outside tolerance",
    "BiasMissingFromOneRow": "conv2d_layer on layer_fig_7_2_1_bias",
    "BiasOutsideTheModule": "the bias did not move in one optimizer step on layer_step_fig_7_2_1",
    "LossesOneStepLate": "the losses are recorded one step late",
    "TrueConvolutionLayer": "the layer computes a true convolution (a flipped kernel, as Flux's Conv)",
    "LayerWithBias": "the layer has a bias (trained from 0), where the book's loop has none",
    "AccumulatesGradients": "the gradients accumulate across steps (never zeroed between them)",
    "LearnsInFloat32": "float32 arithmetic in a float64 run",
    "ReportsAnotherStart": "a different start than reported (the first loss",
    "SetsEnvironment": "os.environ['CONV_META_LEFT_BEHIND'] was '<unset>', is now '1'",
    # The general convolution (spec/general.py, tests/test_conventions.py).
    "GeneralFlipped": "values outside tolerance; kernel looks flipped: this is convolution, not cross-correlation",
    "SameExtraPixelFirst": "the extra pixel at the wrong end ('same_lower' where 'same' is meant)",
    "SameAsHalfKernel": "k//2 padding at both ends where 'same' is meant",
    "PadsWidthFirst": "the pads read width first (torch F.pad's order",
    "PadsBeginEndSwapped": "the pads' begin and end swapped",
    "KernelReshapedNotTransposed": "the kernel reshaped where it should be transposed (OIHW read as HWIO)",
    "KernelHWSwapped": "kernel height and width swapped (K transposed)",
    "DepthwiseChannelOrder": "output channels ordered j*G + g instead of g*m + j",
    "SymmetricForReflect": "symmetric padding where reflect is meant",
    "DilationIgnored": "the dilation ignored",
    "NoParameterChecks": "the spec says this is an error",
    "GradientsSwapped": "dX and dK swapped",
    "LastKernelRowGradient": "dK of conv_general_vjp on general_fig_7_2_1",
    "ChannelsLastResultLeftNCHW": "the result left channels-first (NCHW) where channels-last (NHWC) is meant",
    "ChannelsLastKernelReadAsOIHW": "the kernel read as OIHW where HWIO is given",
    "BackpropGuessesInputSize": "dX of conv_general_backprop on stride_floor (BackpropGuessesInputSize-cpu-float16): "
                                "shape 1x1x4x4, expected 1x1x5x5 (the shape of X); the input size inferred from dY's",
    # Pooling (d2l 7.5).
    "AveragesCountPadding": "the padded cells counted in the average (count_include_pad=True where False is meant)",
    "PoolFloorForCeil": "floor output sizes where ceil is meant",
    "MaxForAverage": "maximum pooling where the average is meant",
    "AverageForMax": "average pooling where the maximum is meant",
    "PoolSameAsHalfWindow": "k//2 padding at both ends where 'same' is meant",
    "PlainCeil": "a plain ceil, which keeps a last window that starts past the input and the leading pad",
    "PoolNoParameterChecks": "pool2d on pool_window_exceeds_input: X 1x1x2x2",
    "PoolSameUnclamped": "pool2d on pool_max_same_stride_past_window",
    "FlushesSubnormalsUndeclared": "subnormals flushed to zero (FTZ/DAZ): if the framework does so, declare it",
    # Only generated cases find these (tests/test_generated.py); test_generated_only.py shows the fixed cases do not.
    "WrongPastTile": "kernel looks flipped: this is convolution, not cross-correlation",
    "TallKernelTransposed": "kernel height and width swapped (K transposed)",
    "StrideResidueOffByOne": "conv_general on a generated case (StrideResidueOffByOne-cpu-float",
    "Conv2dPartialTile": "conv2d on a generated case (Conv2dPartialTile-cpu-float",
    # Transposed convolution (d2l 14.10).
    "TransposeWithoutKernelFlip": "kernel looks flipped (lax.conv_transpose without transpose_kernel=True)",
    "TransposeSameAsTorchCrop": "torch's crop (padding k//2, output_padding s-1) where TensorFlow's 'SAME' is meant",
    "TransposeCropAsSame": "TensorFlow's 'SAME' crop where explicit padding (and output_padding) is meant",
    "TransposeNoChecks": "the spec says this is an error (output_padding 2 must be smaller than the stride 2",
}
#: Mistakes of the learning loop that the suite tells apart: an adapter that makes one of them must
#: not be told it made another.
LEARNING_DIAGNOSES = ("MeanLoss", "HalfMeanLoss", "WrongLearningRate", "LossesOneStepLate", "TrueConvolutionLayer",
                      "LayerWithBias", "AccumulatesGradients", "LearnsInFloat32", "ReportsAnotherStart")
#: Adapters whose mistake only a generated case finds (tests/meta/test_generated_only.py): their runs draw
#: 100 examples per property, not 10, so that catching them does not hang on which examples a seed gives
#: (measured: the stride-residue adapter, wrong for about one draw in ten, was missed at 10 examples once a
#: property's code changed, and at 50 by seeds 1 and 3; at 100 seeds 1-4 and the fixed ones all catch it).
GENERATED_ONLY = ("WrongPastTile", "TallKernelTransposed", "StrideResidueOffByOne", "Conv2dPartialTile")
DEPTH = ("--max-examples=100",)
#: Adapters whose mistake shows only on a (here simulated) GPU.
DEVICE = {"LeavesOutputOnCPU": "gpu", "TF32LeftOn": "gpu", "SwitchDoesNotTake": "gpu", "Nondeterministic": "gpu"}


def run_suite(backend: str, *extra: str, device: str = "cpu", shrink: bool = False,
              env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONV_CONFORMANCE_")} | (env_extra or {})
    if not shrink:  # a broken adapter fails the generated properties at once; shrinking each costs seconds
        env["CONV_CONFORMANCE_SHRINK"] = "0"
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "tests"), "--ignore", str(ROOT / "tests" / "meta"),
         f"--backend={backend}", f"--device={device}", "-p", "no:cacheprovider", "-q", "--tb=line", "-rfEs",
         *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def outcome(result: subprocess.CompletedProcess) -> dict[str, int]:
    last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|error|errors)", last)}


def test_reference_adapter_passes():
    result = run_suite("numpy")
    counts = outcome(result)
    assert result.returncode == 0 and counts.get("passed", 0) > 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "failed" not in counts and "skipped" not in counts, counts
    assert "verdict: numpy: CONFORMANT" in result.stdout


@pytest.fixture(scope="session")
def records(tmp_path_factory):
    """Folder where every catalogue run leaves its results record (session-scoped: under
    ``--dist loadgroup`` other modules' tests may run between this module's on the same worker)."""
    return tmp_path_factory.mktemp("catalogue")


#: Adapters whose mistake reaches past their own results (the process's environment, NumPy's error state,
#: the global RNG) run alone; so do those run on another device or at another depth.
ALONE = ("SetsEnvironment", "LeavesErrstate", "SeedsTheGlobalGenerator", *DEVICE, *GENERATED_ONLY)
#: The rest share runs, SHARE adapters to a pytest (``--backend=A,B,...``: one verdict and one record per
#: adapter), which pays pytest's start and the suite's collection once instead of once per adapter.
#: Measured on this module alone, one process: 348.6 s shared by 12, 357.6 s one adapter per run
#: (``CONV_META_SHARE=1``): a run of twelve backends costs more per test than twelve runs of one.
SHARE = int(os.environ.get("CONV_META_SHARE", "12"))
#: A broken adapter is proven caught by its first failure, which must name its mistake: the rest run with
#: ``--first-failure`` (measured: the catalogue module 4 min 20 s instead of about 6 to 10).  These few run
#: the whole suite, so that every case of the spec is shown to be failed by some broken adapter
#: (``test_no_spec_case_is_vacuous``): a new case that none of them fails needs one that does, here.
FULL = ("AverageForMax", "BiasNotRegistered", "BiasTwice", "ConstantOffset", "EmptyForLargeKernel", "GeneralFlipped",
        "GradientsSwapped", "MaxForAverage", "MeanLoss", "NoParameterChecks", "PoolNoParameterChecks",
        "PoolSameUnclamped", "TransposeCropAsSame", "TransposeNoChecks", "TransposeSameAsTorchCrop",
        "TransposeWithoutKernelFlip", "WrongGradient")
SHARED = [a for a in sorted(CATALOGUE) if a not in ALONE and a not in FULL]
CHUNKS = [SHARED[i:i + SHARE] for i in range(0, len(SHARED), SHARE)] + [list(FULL[i:i + SHARE])
                                                                         for i in range(0, len(FULL), SHARE)]


@dataclass
class Seen:
    """One adapter's part of a run: the run's exit status, its own failures (from its record), and its
    own verdict section of the terminal report."""

    returncode: int
    caught: int
    headline: str
    text: str  # its failures' messages and its verdict section: nothing of another adapter's


_SEEN: dict[str, Seen] = {}


def _section(stdout: str, label: str) -> str:
    """The terminal report's verdict section of one backend."""
    lines = stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(rf"^-+ verdict: {re.escape(label)}: ", line)), None)
    if start is None:
        return ""
    end = next((j for j in range(start + 1, len(lines)) if re.match(r"^[-=]{3,} ", lines[j])), len(lines))
    return "\n".join(lines[start:end])


def seen(adapter: str, records: Path) -> Seen:
    """Run the catalogue adapter, alone or in its shared run, and read its part."""
    if adapter not in _SEEN:
        together = next((chunk for chunk in CHUNKS if adapter in chunk), [adapter])
        first = () if adapter in FULL else ("--first-failure",)
        result = run_suite(",".join(f"tests.meta.broken:{a}" for a in together), f"--results-dir={records}",
                           *first, *(DEPTH if adapter in GENERATED_ONLY else ()), device=DEVICE.get(adapter, "cpu"))
        for a in together:
            path = records / f"{a}.json"
            if not path.is_file():
                _SEEN[a] = Seen(result.returncode, 0, "no record", result.stdout[-3000:] + result.stderr[-2000:])
                continue
            rec = json.loads(path.read_text())
            failures = [r for r in rec["results"] if r["outcome"] in ("failed", "error")]
            _SEEN[a] = Seen(result.returncode, len(failures), rec["verdict"]["headline"],
                            "\n".join(r["reason"] for r in failures) + "\n" + _section(result.stdout, a))
    return _SEEN[adapter]


def test_shared_runs_keep_each_adapter_to_itself(records):
    """A shared run's parts are each adapter's own: the reference adapter beside broken ones is CONFORMANT,
    and a broken adapter's words are not found in another's part."""
    pair = ("FlippedKernel", "BiasTwice")
    result = run_suite(",".join(["numpy", *(f"tests.meta.broken:{a}" for a in pair)]),
                       f"--results-dir={records / 'shared'}")
    assert result.returncode == 1
    assert "verdict: numpy: CONFORMANT" in _section(result.stdout, "numpy"), result.stdout[-3000:]
    for a, other in (pair, pair[::-1]):
        part = _section(result.stdout, a)
        assert f"verdict: {a}: NOT CONFORMANT" in part and f"--backend=tests.meta.broken:{a}" in part
        assert f"--backend=tests.meta.broken:{other}" not in part, part


@pytest.mark.parametrize("adapter", sorted(CATALOGUE))
def test_broken_adapter_is_caught(adapter, records):
    s = seen(adapter, records)
    assert s.returncode == 1 and s.caught > 0, f"{adapter} was not caught ({s.headline}):\n{s.text[-3000:]}"
    assert CATALOGUE[adapter] in s.text, (
        f"{adapter} failed {s.caught} checks, but no failure says {CATALOGUE[adapter]!r}:\n" + s.text[-4000:])
    if adapter in LEARNING_DIAGNOSES:
        wrong = [other for other in LEARNING_DIAGNOSES if other != adapter and CATALOGUE[other] in s.text]
        assert not wrong, f"{adapter} is also told it made the mistakes of {wrong}:\n{s.text[-3000:]}"
    assert s.headline == "NOT CONFORMANT" and f"verdict: {adapter}: NOT CONFORMANT" in s.text
    assert "reproduce: pytest 'tests/" in s.text and f"--backend=tests.meta.broken:{adapter}" in s.text


def test_hanging_op_times_out_and_the_run_goes_on():
    result = run_suite("tests.meta.broken:Hangs", "--timeout=2", "-k", "fig_7_2_1 and float64")
    counts = outcome(result)
    assert "Timeout" in result.stdout, result.stdout[-3000:]
    assert counts.get("failed", 0) >= 1 and counts.get("passed", 0) >= 1, counts  # only corr2d hangs


def test_unknown_backend_lists_the_known_ones():
    result = run_suite("nosuchbackend")
    assert result.returncode == 4  # pytest's usage error
    known = ("jax, jvm, keras-jax, keras-tensorflow, keras-torch, mlx, mxnet, numpy, onnxruntime, paddle, tensorflow, "
             "tfjs, tinygrad, torch")
    assert f"unknown backend 'nosuchbackend'; known backends: {known}" in result.stderr, result.stderr
    # Where it looked: an adapter installed for another interpreter is not found by this one.
    assert f"entry points of the group 'conv_conformance.backends' searched in the packages installed for " \
           f"{sys.executable}" in result.stderr


def test_unimportable_backend_is_an_error_not_a_skip():
    result = run_suite("tests.meta.broken:Unimportable")
    assert result.returncode == 4, result.stdout[-2000:]
    assert "cannot import 'no_such_framework_conv_conformance': ModuleNotFoundError" in result.stderr


def test_gpu_asked_for_explicitly_without_one_is_an_error():
    result = run_suite("numpy", "--device=gpu")
    assert result.returncode == 4
    assert "--device gpu was asked for, but numpy has no GPU" in result.stderr


def test_gpu_without_one_under_device_all_skips_with_the_reason():
    result = run_suite("tests.meta.broken:ClaimsGPU", "--device=all", "-k", "fig_7_2_1")
    counts = outcome(result)
    assert result.returncode == 0 and counts.get("skipped", 0) > 0 and counts.get("passed", 0) > 0, result.stdout
    assert "ClaimsGPU on gpu: no GPU here (simulated)" in result.stdout


def test_a_check_dropped_from_collection_fails_the_run(monkeypatch):
    """The tripwire: checks come from the spec, so a silently dropped test (a plugin lost it; nothing
    asked for it) turns the run red.  A test deselected on purpose is a narrowed run: test_sealed_runs.py."""
    monkeypatch.setenv("CC_META_DROP", "test_edge_detection[numpy-cpu-float32-edge_6x8-conv2d]")
    result = run_suite("numpy", "-p", "tests.meta.plugins")
    assert result.returncode == 1, result.stdout[-2000:]
    assert "tripwire: numpy ran fewer checks than the spec asks" in result.stdout
    row = re.search(r"numpy-cpu-float32 +expected +(\d+) +ran +(\d+) +skipped +0 +<-- 1 MISSING", result.stdout)
    assert row and int(row[2]) == int(row[1]) - 1, result.stdout[-3000:]


def test_no_spec_case_is_vacuous(records):
    """Every case of the spec is failed by at least one broken adapter of the catalogue.

    Runs after the catalogue (same module, defined last); reads the records it left.
    """
    import spec

    failed = set()
    for path in records.glob("*.json"):
        if path.stem in FULL:  # the others stopped at their first failure
            failed |= {r["case"] for r in json.loads(path.read_text())["results"] if r["outcome"] == "failed"}
    missing = sorted(set(CATALOGUE) - {p.stem for p in records.glob("*.json")})
    if missing:
        pytest.fail(f"the catalogue did not run completely before this test (run the whole module): no record "
                    f"of {missing}")
    all_cases = {c.id for c in spec.all_cases()}
    assert all_cases - failed == set(), (f"no broken adapter of FULL fails these cases: {sorted(all_cases - failed)} "
                                         "(a case no mistake fails is vacuous; if one of the catalogue fails it, "
                                         "add that adapter to FULL)")


def test_first_failure_leaves_a_clean_adapter_a_whole_run():
    """--first-failure stops only a backend that failed: the reference still runs every check, and its
    CONFORMANT is a whole run's (no stopped skips, no narrowing)."""
    result = run_suite("numpy", "--first-failure")
    assert result.returncode == 0 and "verdict: numpy: CONFORMANT" in result.stdout, result.stdout[-3000:]
    assert "skipped" not in outcome(result) and "stopped" not in result.stdout


def test_first_failure_stops_only_the_backend_that_failed():
    """Beside a broken adapter in one run, the reference is not stopped; the broken one is NOT CONFORMANT,
    says it stopped, and is not judged below the core level on checks it never ran."""
    result = run_suite("numpy,tests.meta.broken:FlippedKernel", "--first-failure")
    assert result.returncode == 1
    assert "verdict: numpy: CONFORMANT" in _section(result.stdout, "numpy"), result.stdout[-3000:]
    part = _section(result.stdout, "FlippedKernel")
    assert "verdict: FlippedKernel: NOT CONFORMANT" in part and "--first-failure: stopped at its first failure" in part
    assert "below the core conformance level" not in part, part
