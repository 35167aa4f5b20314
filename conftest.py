"""pytest plugin of the conformance suite: options, targets, report header.

A *target* is one backend on one device in one dtype in one precision mode;
every conformance test takes the ``target`` (or, for training,
``train_target``) fixture and so runs once per selected combination, with an
id such as ``torch-cpu-float32`` (``torch-gpu-float32-fast`` in the fast mode).
The ``probe`` fixture runs the dtypes an adapter's manifest leaves out.

Selection: ``--backend`` (names, a comma list, ``all``, or an import path
``package.module:Class``), ``--device`` (``cpu``, ``gpu``, ``all``) and
``--precision`` (``strict``, ``fast``, ``all``), or the environment variables
``CONV_CONFORMANCE_BACKEND`` / ``_DEVICE`` / ``_PRECISION``.  A backend that was
asked for and cannot be imported stops the run with the import error.  GPU
targets on a machine without a usable GPU are skipped with the adapter's
reason under ``--device all``, and stop the run under ``--device gpu`` (a GPU
job must not pass on a CPU machine).  Around every test the adapter's
``numerics`` applies the target's precision mode, and a test after which any
reported setting changed fails.
"""

from __future__ import annotations

import functools
import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import backends
from spec import numerics
from tests import globalstate, support, verdict

BACKEND_HELP = (
    "backends to test: a name, a comma list, 'all' (every shipped adapter), or an import path "
    "'package.module:ClassName' (env CONV_CONFORMANCE_BACKEND; default: numpy)"
)
DEVICE_HELP = "devices to test: cpu, gpu or all (env CONV_CONFORMANCE_DEVICE; default: all)"
DEVICE_CHOICES = {"cpu": ("cpu",), "gpu": ("gpu",), "all": ("cpu", "gpu")}
PRECISION_HELP = (
    "precision modes: strict (reduced-precision math such as TF32 off, float32 held to float32's error bound), "
    "fast (the framework's defaults, float32 held to TF32's bound), or all (env CONV_CONFORMANCE_PRECISION; "
    "default: strict)")
PRECISION_CHOICES = {"strict": ("strict",), "fast": ("fast",), "all": ("strict", "fast")}

pytest_plugins = ["tests.records", "tests.deviations"]

#: Stash key: the session's :class:`Selection`.
SELECTION = pytest.StashKey["Selection"]()


#: (examples per generated property, seeded) for the header.
GENERATED = pytest.StashKey[tuple]()


@dataclass(frozen=True)
class Target:
    """One backend, on one device, in one dtype, in one precision mode."""

    backend: backends.Backend
    device: str
    dtype: str
    precision: str = "strict"

    @property
    def id(self) -> str:
        """``torch-gpu-float32``; the non-default mode is appended: ``torch-gpu-float32-fast``."""
        mode = "" if self.precision == "strict" else f"-{self.precision}"
        return f"{self.backend.label}-{self.device}-{self.dtype}{mode}"

    @property
    def arithmetic(self) -> str:
        """The format whose unit roundoff bounds this target's errors.

        In fast mode a float32 convolution may run as TF32 (inputs rounded to
        11 significant bits, products exact and sums kept in float32), so its
        tolerance is the same gamma bound computed with TF32's u = 2**-11.
        """
        return numerics.arithmetic(self.dtype, self.precision)

    def asarray(self, a: np.ndarray):
        """``a`` rounded to the dtype, then handed to the adapter (exactly)."""
        return self.backend.asarray(numerics.container(a, self.dtype), dtype=self.dtype, device=self.device)


#: The verbs a probe can try on the chapter's first example: those that take X and K and return Y.
PROBED_VERBS = ("corr2d", "conv2d", "corr2d_matmul")


@dataclass(frozen=True)
class Probe(Target):
    """A dtype the manifest leaves out (``op`` None: tried with a verb the adapter has), or one
    correlation verb in a declared dtype that ``verb_dtypes`` leaves out (``op``: that verb)."""

    op: str | None = None

    @property
    def id(self) -> str:
        return super().id + (f"-{self.op}" if self.op else "")


@dataclass
class Selection:
    """What this session runs: backends (loaded), devices, and GPU skip reasons."""

    backends: list[backends.Backend]
    devices: tuple[str, ...]
    gpu_skip: dict[str, str]  # backend name -> why its GPU targets skip
    precisions: tuple[str, ...] = ("strict",)

    def targets(self, *, train: bool = False) -> list:
        params = []
        for bk in self.backends:
            for device in self.devices:
                dtypes = bk.dtypes.get(device, ())
                if train:
                    dtypes = tuple(d for d in dtypes if d in bk.train_dtypes)
                for dtype, precision in itertools.product(dtypes, self.precisions):
                    target = Target(bk, device, dtype, precision)
                    marks = ()
                    if device == "gpu" and bk.label in self.gpu_skip:
                        marks = (support.skip_mark(self.gpu_skip[bk.label]),)
                    params.append(pytest.param(target, id=target.id, marks=marks))
        return params

    def target_of(self, nodeid: str) -> Target | None:
        """The target a test id names, from its parameters alone (for ids whose
        item is not at hand), whether or not this session selected it.  Longest
        match first: ``torch-cpu-float32`` is a prefix of ``torch-cpu-float32-fast``."""
        param = nodeid.partition("[")[2].rstrip("]")
        candidates = [t for t in self._every_target if param == t.id or param.startswith(t.id + "-")]
        return max(candidates, key=lambda t: len(t.id), default=None)

    @functools.cached_property
    def _every_target(self) -> list[Target]:
        return [Target(bk, *combination) for bk in self.backends for combination in itertools.product(
            backends.base.DEVICES, backends.base.DTYPES, backends.base.PRECISIONS)]

    def probes(self) -> list:
        """One probe per dtype the manifest leaves out, on each device it can use here, and one per
        correlation verb and declared dtype that ``verb_dtypes`` leaves out."""
        params = []
        for bk in self.backends:
            for device in self.devices:
                if device not in bk.dtypes or (device == "gpu" and bk.label in self.gpu_skip):
                    continue
                for dtype in backends.base.DTYPES:
                    if dtype not in bk.dtypes[device]:
                        probe = Probe(bk, device, dtype)
                        params.append(pytest.param(probe, id=probe.id))
                    else:
                        for op in PROBED_VERBS:
                            if not bk.declares(op, dtype):
                                probe = Probe(bk, device, dtype, op=op)
                                params.append(pytest.param(probe, id=probe.id))
        return params


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conv-conformance", "conv-conformance target selection")
    group.addoption("--backend", dest="cc_backend", default=None, help=BACKEND_HELP)
    group.addoption("--device", dest="cc_device", default=None, choices=sorted(DEVICE_CHOICES), help=DEVICE_HELP)
    group.addoption("--max-examples", dest="cc_max_examples", type=int, default=None,
                    help="examples per generated property and target (env CONV_CONFORMANCE_MAX_EXAMPLES; default "
                         f"{DEFAULT_MAX_EXAMPLES}; a deep run: 200 with --hypothesis-seed=N)")
    group.addoption("--precision", dest="cc_precision", default=None, choices=sorted(PRECISION_CHOICES),
                    help=PRECISION_HELP)
    group.addoption("--first-failure", dest="cc_first_failure", action="store_true", default=False,
                    help="stop each backend at its first failed check: its remaining checks skip ('stopped after "
                         "the backend's first failure'), its verdict is NOT CONFORMANT; a backend that fails "
                         "nothing still runs every check (a quick 'no' for a broken adapter)")


def _select(config: pytest.Config) -> Selection:
    backend_opt = _option(config, "cc_backend", "CONV_CONFORMANCE_BACKEND", "numpy")
    device_opt = _option(config, "cc_device", "CONV_CONFORMANCE_DEVICE", "all")
    if device_opt not in DEVICE_CHOICES:
        raise pytest.UsageError(f"--device {device_opt!r}: choose from {', '.join(sorted(DEVICE_CHOICES))}")
    precision_opt = _option(config, "cc_precision", "CONV_CONFORMANCE_PRECISION", "strict")
    if precision_opt not in PRECISION_CHOICES:
        raise pytest.UsageError(
            f"--precision {precision_opt!r}: choose from {', '.join(sorted(PRECISION_CHOICES))}")
    if backend_opt == "all":
        names = backends.builtin_names()
    elif backend_opt.startswith("runner:"):  # a runner command: its commas separate its argv (docs/runners.md)
        names = [backend_opt]
    else:
        names = [n.strip() for n in backend_opt.split(",") if n.strip()]
    if not names:
        raise pytest.UsageError(f"--backend {backend_opt!r} names no backend: {BACKEND_HELP}")
    loaded, gpu_skip = [], {}
    for name in dict.fromkeys(names):
        bk = _load(name)
        if bk.label in {b.label for b in loaded}:
            raise pytest.UsageError(f"--backend {backend_opt!r}: {name!r} is the backend {bk.label!r} a second time")
        loaded.append(bk)
        if "gpu" in DEVICE_CHOICES[device_opt]:
            reason = _adapter(name, "gpu_unavailable_reason()", bk.gpu_unavailable_reason) if "gpu" in bk.dtypes \
                else f"{bk.label} declares no GPU dtypes"
            if reason is not None:
                if device_opt == "gpu":
                    raise pytest.UsageError(f"--device gpu was asked for, but {bk.label} has no GPU: {reason}")
                gpu_skip[bk.label] = f"{bk.label} on gpu: {reason}"
    return Selection(loaded, DEVICE_CHOICES[device_opt], gpu_skip, PRECISION_CHOICES[precision_opt])


def _option(config: pytest.Config, dest: str, env: str, default: str) -> str:
    """The option, else the environment variable, else the default; a blank value is a usage error."""
    for value, where in ((config.getoption(dest), f"--{dest.removeprefix('cc_')}"), (os.environ.get(env), env)):
        if value is not None:
            if not value.strip():
                raise pytest.UsageError(f"{where} is set but blank")
            return value.strip()
    return default


def _adapter(name: str, what: str, fn, *args):
    """Call into an adapter while selecting it: anything it raises is a usage error that names it."""
    try:
        return fn(*args)
    except backends.BackendUnavailable as exc:
        raise pytest.UsageError(str(exc)) from exc
    except (Exception, pytest.skip.Exception, pytest.fail.Exception, pytest.xfail.Exception) as exc:
        raise pytest.UsageError(f"backend {name!r}: {what} raised {type(exc).__name__}: {exc}") from exc


def _adapter_files(name: str, bk: backends.Backend) -> None:
    """The fixed cases and the known-deviation list an adapter ships (``Backend.cases``,
    ``Backend.known_deviations``): present, and the cases valid and the oracle's."""
    import spec

    for attr in ("cases", "known_deviations"):
        relative = getattr(bk, attr, None)
        if relative is None:
            continue
        if not isinstance(relative, str) or not relative:
            raise pytest.UsageError(f"backend {name!r}: {attr} must be a path relative to the adapter's module, "
                                    f"not {relative!r}")
        try:
            path = backends.base.adapter_file(type(bk), relative)
        except FileNotFoundError as exc:
            raise pytest.UsageError(f"backend {name!r}: {attr}: {exc}") from exc
        if not path.is_file():
            raise pytest.UsageError(f"backend {name!r}: {attr} = {relative!r}: no such file ({path})")
        if attr == "cases":
            try:
                spec.register_adapter_cases(bk.label, path)
            except spec.SpecError as exc:
                raise pytest.UsageError(f"backend {name!r}: its own cases: {exc}") from exc


def _check_verb_dtypes(name: str, bk: backends.Backend) -> None:
    """``verb_dtypes`` names known verbs that the manifest declares, and dtypes that ``dtypes`` lists."""
    vd = bk.verb_dtypes
    if not isinstance(vd, dict) or not all(isinstance(v, tuple | list) for v in vd.values()):
        raise pytest.UsageError(f"backend {name!r}: verb_dtypes must be {{verb: (dtype, ...)}}, not {vd!r}")
    for verb, held in vd.items():
        if verb not in backends.base.VERBS:
            raise pytest.UsageError(f"backend {name!r}: verb_dtypes names {verb!r}, which is not a verb of the suite "
                                    f"{backends.base.VERBS}")
        if bk.verbs is not None and verb not in bk.verbs:
            raise pytest.UsageError(f"backend {name!r}: verb_dtypes names {verb!r}, which its manifest does not "
                                    "declare (verbs)")
        listed = {d for v in bk.dtypes.values() for d in v}
        if not set(held) <= listed:
            raise pytest.UsageError(f"backend {name!r}: verb_dtypes lists {sorted(set(held) - listed)} for {verb!r}, "
                                    f"which dtypes does not declare on any device ({sorted(listed)})")


def _load(name: str) -> backends.Backend:
    try:
        cls = backends.resolve(name)
    except LookupError as exc:
        raise pytest.UsageError(str(exc)) from exc
    bk = _adapter(name, f"{cls.__name__}()", cls)
    _adapter(name, "load()", bk.load)
    bk.selected_as = name  # what to pass to --backend to reproduce a failure
    if not isinstance(bk.dtypes, dict) or not all(isinstance(v, tuple | list) for v in bk.dtypes.values()):
        raise pytest.UsageError(f"backend {name!r}: dtypes must be {{device: (dtype, ...)}}, not {bk.dtypes!r}")
    unknown = {d for v in bk.dtypes.values() for d in v} - set(backends.base.DTYPES)
    unknown |= set(bk.dtypes) - set(backends.base.DEVICES)
    if unknown:
        raise pytest.UsageError(f"backend {name!r}: its manifest names {sorted(unknown)}, which the suite does not "
                                f"know (devices {backends.base.DEVICES}, dtypes {backends.base.DTYPES})")
    _check_verb_dtypes(name, bk)
    contract = bk.contract
    if contract is not None and (type(contract) is not int or contract not in backends.base.CONTRACTS):
        raise pytest.UsageError(f"backend {name!r}: contract = {contract!r}, but this suite knows contract versions "
                                f"{sorted(backends.base.CONTRACTS)} (backends.base.CONTRACTS): "
                                + ("upgrade the suite" if type(contract) is int and contract > backends.base.CONTRACT
                                   else "declare one of them"))
    _adapter_files(name, bk)
    fz = bk.flushes_subnormals
    if not isinstance(fz, dict) or not all(isinstance(v, tuple | list) and set(v) <= set(bk.dtypes.get(d, ()))
                                           for d, v in fz.items()):
        raise pytest.UsageError(f"backend {name!r}: flushes_subnormals must be {{device: (dtype, ...)}} naming "
                                f"declared devices and dtypes, not {fz!r}")
    learns = bk.verbs is None or "learn_kernel" in bk.verbs
    trainable = {d for v in bk.dtypes.values() for d in v} & set(bk.train_dtypes)
    if learns and bk.dtypes and not trainable:
        raise pytest.UsageError(
            f"backend {name!r}: learn_kernel is declared (verbs), but no declared dtype is in train_dtypes "
            f"{tuple(bk.train_dtypes)!r}: list the dtypes it learns in, or leave learn_kernel out of verbs")
    return bk


#: Examples per generated property and target by default: the whole CPU matrix within CI's budget.
DEFAULT_MAX_EXAMPLES = 10


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SELECTION] = _select(config)
    for bk in config.stash[SELECTION].backends:
        if (older := support.contract_warning(bk)) is not None and not hasattr(config, "workerinput"):
            config.issue_config_time_warning(FutureWarning(older), stacklevel=2)
    support.FULL_TRACEBACKS = config.getoption("verbose") > 0
    _hypothesis_profile(config)


def _hypothesis_profile(config: pytest.Config) -> None:
    """The generated properties' settings: derandomized (the same draws for every backend and every run,
    so a failure replays from its test id and the backends see identical inputs) unless a seed is
    given; no example database (a CI run remembers nothing); no deadline (JAX compiles per shape)."""
    from hypothesis import HealthCheck, Phase, settings

    value = config.getoption("cc_max_examples")
    if value is None:
        env = os.environ.get("CONV_CONFORMANCE_MAX_EXAMPLES", "").strip()
        try:
            value = int(env) if env else DEFAULT_MAX_EXAMPLES
        except ValueError:
            raise pytest.UsageError(f"CONV_CONFORMANCE_MAX_EXAMPLES={env!r} is not a whole number") from None
    if value < 1:
        raise pytest.UsageError(f"--max-examples {value}: at least 1")
    seeded = config.getoption("hypothesis_seed", None) is not None
    # CONV_CONFORMANCE_SHRINK=0: report the first failing example as drawn (the harness's own tests run
    # dozens of broken adapters, each failing at once; shrinking each would cost seconds per property).
    shrink = os.environ.get("CONV_CONFORMANCE_SHRINK", "1").strip() != "0"
    phases = [p for p in Phase if shrink or p not in (Phase.shrink, Phase.explain)]
    settings.register_profile(
        "conv-conformance", max_examples=value, derandomize=not seeded, database=None, deadline=None,
        print_blob=True, phases=phases,
        # The autouse fixtures (numerical setup, notes) wrap the whole test, all its examples, by design;
        # geometries are rejected where invalid; JAX's per-shape compiling is slow by nature.
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.filter_too_much])
    settings.load_profile("conv-conformance")
    config.stash[GENERATED] = (value, seeded)
    support.GENERATED_SEEDED = seeded


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failure's notes (Hypothesis adds the falsifying example, its labelled draws and the spec case it
    prints) kept in the report when the failure is a one-line message (``pytest.fail(pytrace=False)``,
    which pytest shows without them)."""
    report = yield
    if report.failed and item.config.getoption("cc_first_failure"):
        from tests.records import target_of  # imported by pytest as a plugin (assertion rewriting)

        target = target_of(item)
        if target is not None:
            support.FIRST_FAILURE.setdefault(target.backend.label, item.nodeid)
    notes = getattr(call.excinfo.value, "__notes__", None) if call.excinfo is not None else None
    if report.failed and notes:
        text = "\n".join(str(n) for n in notes)
        if isinstance(report.longrepr, str):
            report.longrepr = f"{report.longrepr}\n{text}"
        elif getattr(report.longrepr, "reprtraceback", None) is not None and \
                getattr(report.longrepr.reprtraceback, "style", None) == "value":
            report.longrepr.addsection("what Hypothesis drew", text)
    return report


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``--first-failure``: a backend that failed a check already skips the rest of its checks (in this
    process: under xdist each worker stops on its own first failure)."""
    from tests.records import target_of

    target = target_of(item)
    if target is not None and (first := support.FIRST_FAILURE.get(target.backend.label)):
        support.skip(f"{support.STOPPED}: {target.backend.label} failed {first} (--first-failure)")


#: The order the suite runs its modules in: the chapter's (7.2.1 first, its simplest verb on its first
#: figure), then what lies beyond it.  A broken adapter's first failure (``--first-failure``) is then on the
#: plainest case that shows its mistake, where the diagnosis can name it.
MODULE_ORDER = ("test_cross_correlation", "test_edge_detection", "test_conv_vs_corr", "test_exercises",
                "test_receptive_field", "test_conv_layer", "test_learning_kernel", "test_conventions",
                "test_adapter_cases", "test_generated", "test_manifest", "test_precision_and_determinism")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(MODULE_ORDER)}
    items.sort(key=lambda item: rank.get(item.module.__name__.rsplit(".", 1)[-1] if item.module else "",
                                         len(rank)))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """``pytest --backend=X`` tests the adapter: the harness's own tests (``tests/meta``) run only when
    a path inside them is asked for (``pytest tests/meta``)."""
    if collection_path == verdict.META:
        return not any(p.is_relative_to(verdict.META) for p in verdict.asked_paths(config))
    if collection_path == verdict.SUITE_TESTS / "test_adapter_cases.py":  # only where an adapter ships cases
        import spec

        return not spec.ADAPTER_CASES
    return None


def pytest_report_header(config: pytest.Config) -> list[str]:
    sel = config.stash[SELECTION]
    import spec

    lines = [f"conv-conformance {spec.SUITE_VERSION}, spec {_said(spec.fingerprint)[:12]}, from {config.rootpath}"]
    examples, seeded = config.stash.get(GENERATED, (None, False))
    if examples:
        lines.append(f"conv-conformance: generated cases: {examples} examples per property and target, "
                     + ("seeded by --hypothesis-seed (replay: the same seed)" if seeded else
                        "derandomized (replay: rerun the test id; randomize with --hypothesis-seed=N)"))
    for bk in sel.backends:
        devices = []
        for device in sel.devices:
            if device not in bk.dtypes:
                continue
            if device == "gpu" and bk.label in sel.gpu_skip:
                devices.append(f"gpu skipped ({sel.gpu_skip[bk.label]})")
            else:
                devices.append(f"{_said(bk.device_description, device)} [{', '.join(bk.dtypes[device])}]")
        lines.append(f"conv-conformance: {bk.label} {_said(bk.version)} on {'; '.join(devices) or 'no selected device'}"
                     f", precision {'+'.join(sel.precisions)}, contract {support.contract_of(bk)}")
        if (older := support.contract_warning(bk)) is not None:
            lines.append(f"conv-conformance: {older}")
    return lines


def _said(fn, *args) -> str:
    """What the adapter says for the header; an error is shown, and the record names it as a failure."""
    try:
        return str(fn(*args))
    except Exception as exc:
        return f"<{fn.__name__}() raised {type(exc).__name__}: {exc}>"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    sel = metafunc.config.stash[SELECTION]
    if "adapter_case" in metafunc.fixturenames:  # each adapter's own cases, on its own targets only
        import spec

        params = [pytest.param(p.values[0], c, op, id=f"{p.id}-{c.id}" + (f"-{op}" if op else ""), marks=p.marks)
                  for p in sel.targets() for c in spec.ADAPTER_CASES.get(p.values[0].backend.label, [])
                  for op in ((None, "conv_general_vjp") if "expected_grad" in c.data else (None,))]
        metafunc.parametrize("target,adapter_case,op", params)  # collected only where some adapter ships cases
        return
    for name, train in (("target", False), ("train_target", True)):
        if name in metafunc.fixturenames:
            none = pytest.param(None, id="none", marks=support.skip_mark(
                "no selected backend declares a dtype on a selected device" + (" that learn_kernel is held to "
                                                                               "(train_dtypes)" if train else "")))
            metafunc.parametrize(name, sel.targets(train=train) or [none])
    if "probe" in metafunc.fixturenames:
        nothing = pytest.param(None, id="none", marks=support.skip_mark(
            "every dtype is declared on every device selected: no undeclared dtype to probe"))
        metafunc.parametrize("probe", sel.probes() or [nothing])


@pytest.fixture(autouse=True)
def _numerics(request: pytest.FixtureRequest):
    """Each backend's numerical setup for the target's precision mode (float64
    on; TF32 off in strict mode), and a check that every setting it reports is
    back to what it was after the test: nothing leaks into the next one."""
    for name in ("target", "train_target", "probe"):
        if name in request.fixturenames:
            target = request.getfixturevalue(name)
            if target is None:
                break
            bk = target.backend
            token = support.TARGET.set(target)
            state = globalstate.snapshot(bk)
            if (unreadable := state.get(f"{bk.label}.global_state() (unreadable)")) is not None:
                pytest.fail(f"{bk.label}.global_state() cannot be read: {unreadable}", pytrace=False)
            before = bk.precision_settings()
            try:
                with bk.numerics(target.device, target.dtype, target.precision):
                    yield
            finally:
                support.TARGET.reset(token)
            leaked = support.settings_changed(before, bk.precision_settings())
            if leaked:
                pytest.fail(f"{bk.label}.numerics({target.device!r}, {target.dtype!r}, {target.precision!r}) did not "
                            "restore: " + ", ".join(f"{k} was {a!r}, is now {b!r}" for k, (a, b) in leaked.items()),
                            pytrace=False)
            changed = globalstate.changed(state, globalstate.snapshot(bk))
            if request.node.module.__name__.endswith("test_conv_layer"):  # building a layer may draw its weight
                changed = {k: v for k, v in changed.items() if not k.startswith(globalstate.RNG)}
            if changed:
                pytest.fail(f"{bk.label}: the test left global state changed (the suite's own snapshot, not the "
                            "adapter's): " + ", ".join(f"{k} was {a!r}, is now {b!r}" for k, (a, b) in changed.items()),
                            pytrace=False)
            return
    yield
