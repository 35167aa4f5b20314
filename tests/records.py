"""pytest plugin: results records, the tripwire, and the verdict.

With ``--results-dir DIR`` (env ``CONV_CONFORMANCE_RESULTS``; read once, when
the run starts, and checked writable there) each run writes, per backend,
``DIR/<backend>.json`` and the ``.npz`` it names.  The ``.json`` says what run
it came from -- the matrix run id of ``DIR/matrix.json`` (``report/matrix.py``),
a session id, start and end times, the exit status, whether the run was
narrowed, the tripwire rows, the verdict and whether the record is *complete*
-- and which spec and suite it ran (``spec.fingerprint()``, ``SUITE_VERSION``);
then versions, platform, devices, the precision settings each mode reads back,
seeds, and per test: outcome, reason, max |error|, max error in tolerance
units, determinism.  The ``.npz`` holds the outputs of the seeded random-valued
cases and the fixed-start learning trajectories, plain float64 arrays readable
with ``allow_pickle=False``; its name is unique to the session and its SHA-256
is in the ``.json``.

A run first removes its backends' old ``.json`` records.  At the end, under a
lock on ``DIR/.lock``, it writes the ``.npz``, then the ``.json`` (each to a
temporary name renamed into place), then removes the ``.npz`` files that no
record names any more: a crashed or killed run leaves no record, concurrent
runs never leave one run's ``.json`` beside another's ``.npz``, and the
agreement report treats the ``.json`` as the commit marker.  A record is
written even for an incomplete run (filtered, interrupted, short of checks), but
marked so; the report refuses it.  A failure while asking one adapter for its
record's data fails that backend and keeps every other backend's record.

Entries travel as plain data in each report's ``user_properties`` and are
collected where the session is recorded: in this process, or under
pytest-xdist in the controller, which also rebuilds an entry for a test whose
worker crashed.  One entry per test id: a test reported more than once (its
phases, a repeat) keeps its worst outcome, and an error in teardown fails it.
A skip or xfail raised by anything but the harness itself (an adapter calling
``pytest.skip()``) is turned into a failure that points at ``spec/xfails``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import platform
import re
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import spec
from backends.base import PRECISIONS
from report import RECORD_FORMAT, is_deviation, matrix
from tests import checks, support
from tests.verdict import FAILING, SEVERITY, BackendVerdict, RunInfo, by_cause, judge, meta_only, narrowing, worst

RESULTS = pytest.StashKey[dict]()
NOTES = pytest.StashKey[dict]()
#: The results folder and matrix run, read once at the start: (folder or None, matrix dict or None).
DESTINATION = pytest.StashKey[tuple]()
VERDICTS = pytest.StashKey[dict]()
#: Name of the ``user_properties`` item that carries a test's entry from the
#: process that ran it (an xdist worker, or this one) to the one that records it.
ENTRY = "conv_conformance_entry"
USE_XFAILS = ("a known deviation belongs in the adapter's list spec/xfails/{label}.txt (an 'xfail:' or 'skip:' "
              "entry with a reason, an 'upstream:' link and the exact test id); a verb the adapter lacks raises "
              "NotImplementedError")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("conv-conformance").addoption(
        "--results-dir", dest="cc_results", default=None,
        help="write one results record per backend into this folder (env CONV_CONFORMANCE_RESULTS)")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RESULTS] = {}
    if is_worker(config):
        return
    config.stash[DESTINATION] = _destination(config)
    config.pluginmanager.register(Recorder(config), "conv-conformance-recorder")


def is_worker(config: pytest.Config) -> bool:
    """True inside a pytest-xdist worker: the controller records and reports."""
    return hasattr(config, "workerinput")


def _destination(config: pytest.Config) -> tuple[Path | None, dict | None]:
    """The results folder, created and checked writable now, and the matrix run opened in it."""
    out = config.getoption("cc_results") or os.environ.get("CONV_CONFORMANCE_RESULTS")
    if not out:
        return None, None
    folder = Path(out).resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".writable."):
            pass
    except OSError as exc:
        raise pytest.UsageError(f"--results-dir {out}: cannot write records there ({type(exc).__name__}: "
                                f"{exc})") from exc
    try:
        return folder, matrix.read_run(folder)
    except matrix.MatrixError as exc:
        raise pytest.UsageError(str(exc)) from exc


@pytest.fixture(autouse=True)
def _notes(request: pytest.FixtureRequest):
    """Where the assertion helpers leave their measurements for this test."""
    notes = request.node.stash[NOTES] = {}
    support.NOTES.set(notes)
    yield
    support.NOTES.set(None)


# -- skips and xfails that are not the harness's own ---------------------------


def _police(item: pytest.Item, when: str):
    """Around each phase: a skip the harness did not decide, or any imperative
    xfail, becomes a failure that says where known deviations belong."""
    target = target_of(item)
    use_xfails = USE_XFAILS.format(label=target.backend.label if target is not None else "<backend>")
    try:
        return (yield)
    except pytest.xfail.Exception as exc:  # before Failed, its base class
        raise pytest.fail.Exception(
            f"pytest.xfail({exc.msg!r}) was called during {when}, not by the suite: {use_xfails}",
            pytrace=False) from None
    except pytest.skip.Exception as exc:
        if exc.msg in support.SANCTIONED:
            raise
        raise pytest.fail.Exception(
            f"pytest.skip({exc.msg!r}) was called during {when}, not by the suite (a skip is not a verdict): "
            f"{use_xfails}", pytrace=False) from None


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item):
    return (yield from _police(item, "setup"))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item):
    return (yield from _police(item, "the test"))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem):
    return (yield from _police(item, "teardown"))


# -- entries -------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    report.user_properties.append((ENTRY, _entry(item)))  # each report has a list of its own
    return report


def _entry(item: pytest.Item) -> dict:
    """What the record keeps of one test, as plain data (it crosses the xdist wire)."""
    params = _params(item)
    target = _target_param(params)
    case = params.get("case") or params.get("loop") or params.get("adapter_case")
    notes = item.stash.get(NOTES, {})
    case_id = getattr(case, "id", None)
    return {
        "test": item.nodeid, "module": item.module.__name__.rsplit(".", 1)[-1] if item.module else "",
        "function": item.originalname, "case": case_id or notes.get("case"),
        "op": params.get("op"), **_target_fields(target),
        "check": [item.originalname, case_id, params.get("op")],
        "probe": "probe" in params,
        "max_abs_error": notes.get("max_abs_error"), "max_tolerance_units": notes.get("max_tolerance_units"),
        "determinism": notes.get("determinism"),
        "unexpected": notes.get("unexpected") or (
            f"{target.backend.label}.{notes['undeclared_verb']} is not in the manifest (verbs), "
            "but conforms: declare it" if "undeclared_verb" in notes and "probe" not in params else None),
        "probe_result": notes.get("probe"),
        "left_out": notes.get("left_out"),
        "_outputs": {k: np.asarray(v, dtype=np.float64).tolist() for k, v in notes.items() if k.startswith("output")},
    }


def _params(item: pytest.Item) -> dict:
    """The test's parameters (none for an unparametrized test)."""
    callspec = getattr(item, "callspec", None)
    return callspec.params if callspec else {}


def _target_param(params: dict):
    """The target a test runs on, whichever fixture carries it."""
    return params.get("target") or params.get("train_target") or params.get("probe")


def target_of(item: pytest.Item):
    """The target an item runs on (``None`` for a test without one)."""
    return _target_param(_params(item))


def _target_fields(target) -> dict:
    names = ("backend", "device", "dtype", "precision")
    if target is None:
        return dict.fromkeys(names)
    return dict(zip(names, (target.backend.label, target.device, target.dtype, target.precision), strict=True))


class Recorder:
    """Collects the entries where the session is recorded: in this process, or,
    under pytest-xdist, in the controller, from the reports its workers send."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.deselected = 0
        self.started = matrix.now()
        self.session_id = uuid.uuid4().hex

    def pytest_deselected(self, items) -> None:
        self.deselected += len(items)

    def pytest_runtest_logreport(self, report) -> None:
        entries = self.config.stash[RESULTS]
        carried = next((v for k, v in report.user_properties if k == ENTRY), None)
        outcome, reason = _outcome(report), _reason(report)[:2000]
        if report.when in ("setup", "teardown") and report.failed:
            outcome, reason = "error", f"error in {report.when}: {reason}"
        elif report.when in ("setup", "teardown") and report.passed:
            return  # a setup or teardown that went well says nothing new
        entry = entries.get(report.nodeid)
        if entry is None:
            entry = dict(carried) if carried else _crashed_entry(self.config, report)
            entry["outcome"] = None
            entry["_target"] = _target_of(self.config, entry)
            entries[report.nodeid] = entry
        elif carried and report.when == "call":
            entry.update({k: v for k, v in carried.items() if k not in ("outcome", "reason")})
        if worst(entry["outcome"], outcome):
            if entry["outcome"] in FAILING:  # a failed check, then a failed teardown: both are causes
                reason = f"{entry['reason']}; then {reason}"[:4000]
            entry["outcome"], entry["reason"] = outcome, reason


def _outcome(report) -> str:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.failed:
        return "failed"
    # Any other word (pytest-rerunfailures' "rerun"): a check that needed a second try is no pass.
    return report.outcome if report.outcome in SEVERITY else "failed"


def _reason(report) -> str:
    if hasattr(report, "wasxfail"):
        return str(report.wasxfail)
    if report.skipped and isinstance(report.longrepr, tuple):
        return report.longrepr[2].removeprefix("Skipped: ")
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        return str(crash.message if crash else report.longrepr)
    if report.outcome not in SEVERITY:
        return f"outcome {report.outcome!r}: the test was run again after a failure"
    return ""


def _crashed_entry(config: pytest.Config, report) -> dict:
    """An entry rebuilt from the test id alone, for a test whose process crashed
    (pytest-xdist reports "worker 'gw0' crashed while running ...")."""
    from conftest import SELECTION

    path, _, rest = report.nodeid.partition("::")
    function, _, param = rest.partition("[")
    match = config.stash[SELECTION].target_of(report.nodeid)
    check = None
    if match is not None:
        check = checks.of_test(match, function, param.rstrip("]").removeprefix(match.id).removeprefix("-"))
    return {"test": report.nodeid, "module": Path(path).stem, "function": function,
            "case": check[1] if check else None, "op": check[2] if check else None, **_target_fields(match),
            "check": list(check) if check else None, "probe": function == "test_undeclared_dtype",
            "max_abs_error": None, "max_tolerance_units": None, "determinism": None, "unexpected": None,
            "probe_result": None, "left_out": None, "_outputs": {}}


def _target_of(config: pytest.Config, entry: dict):
    """The counted target of an entry (``None`` for probes and backend-less tests)."""
    from conftest import SELECTION, Target

    if entry["backend"] is None or entry["probe"]:
        return None
    bk = next(b for b in config.stash[SELECTION].backends if b.label == entry["backend"])
    return Target(bk, entry["device"], entry["dtype"], entry["precision"])


# -- the end of the run: verdicts, then records --------------------------------


def pytest_sessionstart(session: pytest.Session) -> None:
    """Remove this run's backends' previous records first: a run that then
    crashes or is killed leaves *no* record, never a stale one from before."""
    if is_worker(session.config):
        return
    out, _ = session.config.stash[DESTINATION]
    if out is None or session.config.getoption("collectonly", False):  # --co runs no check: it writes none
        return
    from conftest import SELECTION

    with _locked(out):
        for bk in session.config.stash[SELECTION].backends:
            (out / f"{bk.label}.json").unlink(missing_ok=True)  # the commit marker


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if is_worker(config) or meta_only(config):
        return
    from conftest import SELECTION

    sel = config.stash[SELECTION]
    recorder = config.pluginmanager.get_plugin("conv-conformance-recorder")
    run = RunInfo(int(session.exitstatus), bool(config.getoption("collectonly", False)),
                  narrowing(config, recorder.deselected))
    entries = list(config.stash[RESULTS].values())
    metadata = {bk.label: _metadata(bk, sel.devices) for bk in sel.backends}
    verdicts = {}
    for bk in sel.backends:
        targets = [t for t in (p.values[0] for p in sel.targets()) if t.backend is bk]
        mine = [e for e in entries if e["backend"] == bk.label]
        try:
            verdicts[bk.label] = judge(bk, targets, mine, run, set(sel.gpu_skip.values()), metadata[bk.label][1])
        except Exception as exc:  # a spec that cannot be read (the run already says why): no verdict, no crash
            verdicts[bk.label] = BackendVerdict(bk.label, no_verdict=[
                f"the harness could not judge this run: {type(exc).__name__}: {str(exc)[:500]}"], fails_run=True)
        from tests.deviations import list_of  # a plugin of its own: imported by pytest, not at import time here

        used = list_of(bk, config.getoption("cc_xfails"))
        verdicts[bk.label].deviation_list = _shown(used, config) if used.is_file() else None
    config.stash[VERDICTS] = verdicts
    if session.exitstatus == 0 and any(v.fails_run for v in verdicts.values()):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if draft := config.getoption("cc_xfails_draft"):
        from tests.deviations import write_draft

        for label, v in verdicts.items():
            if v.failed:
                v.remarks[f"draft known-deviation list written: "
                          f"{write_draft(Path(draft), label, by_cause(v.failed), recorder.session_id)}"] = None
    out, opened = config.stash[DESTINATION]
    if out is None or run.collect_only:  # a collect-only run leaves the folder as it found it
        return
    finished = matrix.now()
    for bk in sel.backends:
        v = verdicts[bk.label]
        try:
            write_record(out, bk, metadata[bk.label][0], [e for e in entries if e["backend"] == bk.label], {
                "id": opened["run_id"] if opened else None, "matrix_opened": opened["opened"] if opened else None,
                "session": recorder.session_id, "started": recorder.started[1], "started_ts": recorder.started[0],
                "finished": finished[1], "exit_status": int(session.exitstatus),
                "complete": v.complete and int(session.exitstatus) in (0, 1),
                "incomplete_because": v.no_verdict, "narrowed": list(run.narrowed),
                "tripwire": [_tally_row(t) for t in v.tallies]}, v)
        except Exception as exc:  # this backend's record is lost; the others are still written
            v.not_conformant.append(f"its results record could not be written: {type(exc).__name__}: {exc}")
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _ask(errors: list[str], what: str, fn, *args):
    """Ask the adapter for record data; an exception becomes a named error, not a lost record."""
    try:
        return fn(*args)
    except Exception as exc:
        errors.append(f"{what} raised {type(exc).__name__}: {exc}")
        return f"unavailable ({type(exc).__name__}: {exc})"


def _metadata(bk, devices) -> tuple[dict, list[str]]:
    """What the record says of the adapter and its framework, and what could not be asked."""
    errors: list[str] = []
    meta = {
        "backend": bk.label, "framework": bk.module, "framework_version": _ask(errors, "version()", bk.version),
        "devices": {d: _ask(errors, f"device_description({d!r})", _describe, bk, d) for d in devices
                    if d in bk.dtypes},
        "declared_dtypes": {d: list(v) for d, v in bk.dtypes.items()},
        "declared_verbs": None if bk.verbs is None else list(bk.verbs),
        # The general convolution's named conventions: how the adapter says it gives each (the
        # report's conventions table puts these beside what the run saw).
        "declared_conventions": {str(k): str(v) for k, v in (getattr(bk, "conventions", None) or {}).items()},
        "flushes_subnormals": {str(d): list(v) for d, v in (getattr(bk, "flushes_subnormals", None) or {}).items()},
        "precision": _ask(errors, "precision_settings()", bk.precision_settings),
        "precision_modes": _ask(errors, "numerics()", _mode_settings, bk, devices),
    }
    return meta, errors


def _tally_row(t) -> dict:
    return {"target": t.target.id, "expected": len(t.expected), "ran": len(t.ran), "skipped": len(t.skipped),
            "missing": [checks.name(k) for k in t.missing]}


@contextlib.contextmanager
def _locked(out: Path):
    """Hold ``out/.lock``: one run at a time removes or commits records in a folder."""
    with open(out / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_record(out: Path, bk, meta: dict, entries: list[dict], run: dict, verdict: BackendVerdict) -> None:
    arrays = {}
    for e in entries:
        if e["outcome"] in ("xfailed", "xpassed"):
            continue  # a known deviation's outputs stay out of the cross-framework comparison
        for key, value in e["_outputs"].items():
            what = e["op"] or key.removeprefix("output:")
            case = e["case"] if e["case"] is not None else e["function"]  # a generated property: no spec case
            key = f"{case}|{what}|{e['device']}|{e['dtype']}|{e['precision']}"
            arrays[key] = np.asarray(value, dtype=np.float64)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    npz = buf.getvalue()
    npz_name = f"{bk.label}.{run['session'][:12]}.npz"
    record = {
        "format": RECORD_FORMAT,
        "suite": {"version": spec.SUITE_VERSION, "spec_fingerprint": spec.fingerprint()},
        "run": run,
        "verdict": {"headline": verdict.headline, "not_conformant": verdict.not_conformant,
                    "no_verdict": verdict.no_verdict},
        **meta,
        "numpy_version": np.__version__, "python": sys.version.split()[0],
        "platform": platform.platform(), "machine": platform.machine(),
        "seeds": _seeds(),
        "outputs": {"file": npz_name, "sha256": hashlib.sha256(npz).hexdigest()},
        "results": [{k: v for k, v in e.items() if not k.startswith("_")} for e in entries],
    }
    data = json.dumps(record, indent=1).encode()
    with _locked(out):
        _atomic_write(out / npz_name, npz)
        _atomic_write(out / f"{bk.label}.json", data)
        for stale in out.glob(f"{bk.label}.*.npz"):  # superseded by this record; none is named by another
            if stale.name != npz_name:
                stale.unlink(missing_ok=True)


def _mode_settings(bk, devices) -> dict:
    """What each precision mode sets, read back inside ``numerics`` for float32 on each device used."""
    out = {}
    for device in (d for d in devices if d in bk.dtypes and "float32" in bk.dtypes[d]):
        if device == "gpu" and bk.gpu_unavailable_reason() is not None:
            continue
        for mode in PRECISIONS:
            try:
                with bk.numerics(device, "float32", mode):
                    out[f"{device}/{mode}"] = bk.precision_settings()
            except Exception as exc:  # the tests already failed on it; the record says why
                out[f"{device}/{mode}"] = f"{type(exc).__name__}: {exc}"
    return out


def _describe(bk, device: str) -> str:
    if device == "gpu" and (reason := bk.gpu_unavailable_reason()) is not None:
        return f"not available: {reason}"
    return bk.device_description(device)


def _seeds() -> dict:
    try:
        return {c.id: c.data["seed"] for c in spec.all_cases() if "seed" in c.data}
    except spec.SpecError as exc:
        return {"error": str(exc)}


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # the results folder is shared by all envs and read by the report
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# -- what the terminal shows ---------------------------------------------------


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    if is_worker(config) or VERDICTS not in config.stash:
        return
    from conftest import SELECTION

    verdicts = config.stash[VERDICTS]
    rows = [t for v in verdicts.values() for t in v.tallies]
    if rows:
        terminalreporter.section("conv-conformance: checks per target")
        for t in rows:
            flag = f"  <-- {len(t.missing)} MISSING" if t.missing else ""
            terminalreporter.write_line(f"{t.target.id:34} expected {len(t.expected):4}  ran {len(t.ran):4}  "
                                        f"skipped {len(t.skipped):4}{flag}")
    for bk in config.stash[SELECTION].backends:
        v = verdicts[bk.label]
        prefix, suffix = _reproduce_parts(config, bk)
        lists = [v.deviation_list] if v.deviation_list else []  # the list read, as sessionfinish found it
        _print_verdict(terminalreporter, v, getattr(bk, "selected_as", bk.label), prefix=prefix, suffix=suffix,
                       lists=lists)
    short = [label for label, v in verdicts.items() if v.fails_run and any(t.missing for t in v.tallies)]
    if short:
        terminalreporter.write_line(f"tripwire: {', '.join(short)} ran fewer checks than the spec asks: run failed",
                                    red=True)


def _shown(path: Path, config: pytest.Config) -> str:
    """A path as a reader can use it: relative to the suite's root or the working folder where it lies there."""
    path = Path(path).resolve()
    for base in (Path(config.rootpath), Path(config.invocation_params.dir)):
        if path.is_relative_to(base.resolve()):
            return path.relative_to(base.resolve()).as_posix()
    return str(path)


def _reproduce_parts(config: pytest.Config, bk) -> tuple[str, str]:
    """What a reproduce line needs beyond the test id: the PYTHONPATH an import-path adapter came
    from (when it is not the checkout), and a --xfails folder other than the default."""
    from tests.deviations import DEFAULT_DIR

    prefix = ""
    selected = getattr(bk, "selected_as", "")
    if ":" in selected:
        top = sys.modules.get(selected.partition(":")[0].split(".")[0])
        where = Path(getattr(top, "__file__", "") or "")
        if where.name:
            root = where.parent.parent if where.name == "__init__.py" else where.parent
            if root.resolve() != Path(config.rootpath).resolve():
                prefix = f"PYTHONPATH={root} "
    xfails = config.getoption("cc_xfails")
    suffix = f" --xfails={xfails}" if xfails and Path(xfails).resolve() != DEFAULT_DIR.resolve() else ""
    return prefix, suffix


def _print_verdict(terminalreporter, v: BackendVerdict, selected_as: str, *, prefix: str = "", suffix: str = "",
                   lists: list[str] = ()) -> None:
    """Per backend: the headline, its reasons, per chapter section, known deviations, and the failures
    grouped by cause, with one line that reproduces each cause."""
    headline = v.headline
    terminalreporter.section(f"verdict: {v.label}: {headline}", sep="-",
                             red=headline == "NOT CONFORMANT", yellow=headline == "NO VERDICT")
    for reason in v.not_conformant:
        terminalreporter.write_line(f"  not conformant: {reason}", red=True)
    for reason in v.no_verdict:
        terminalreporter.write_line(f"  no verdict: {reason}", yellow=True)
    for section, n in sorted(v.sections.items()):
        kinds = ("unsupported (declared)", "not in the manifest", "known deviation", "left to fixed cases", "xpassed",
                 "gpu absent", "stopped (--first-failure)", "error")
        extra = "".join(f"  {k} {n[k]:4}" for k in kinds if n[k])
        terminalreporter.write_line(
            f"  {section:26} passed {n['passed']:4}  failed {n['failed']:4}  skipped {n['skipped']:4}  "
            f"not implemented {n['not implemented']:4}{extra}")
    for line in v.remarks:
        terminalreporter.write_line(f"  {line}", yellow=True)
    deviations = [e for e in v.entries if is_deviation(e)]
    if deviations or lists:
        read = ", ".join(lists) if lists else "none"
        terminalreporter.write_line(f"  known deviations: {len(deviations)} (lists read: {read})")
        # One line per reason: the list's line number, which differs per test id, left out.
        for reason, n in Counter(re.sub(r"^\((.*?):\d+\)", r"(\1)", e["reason"].removeprefix(support.KNOWN_DEVIATION)
                                        .lstrip()) for e in deviations).most_common():
            terminalreporter.write_line(f"    {n:4} × {reason[:300]}")
    groups = by_cause(v.failed)
    # The command this run came through: pytest in a checkout, or the installed `conv-conformance`.
    runner = "conv-conformance" if os.environ.get("CONV_CONFORMANCE_RUNNER") == "conv-conformance" else "pytest"
    if groups:
        terminalreporter.write_line(f"  {len(v.failed)} failure(s), {len(groups)} cause(s); one reproduce line each:")
    for text, entries in groups[:20]:
        e = entries[0]
        mode = " --precision=fast" if e.get("precision") == "fast" else ""
        terminalreporter.write_line(f"    {len(entries):4} × {text[:300]}", red=True)
        terminalreporter.write_line(f"         reproduce: {prefix}{runner} '{e['test']}' --backend={selected_as}{mode}"
                                    f"{suffix}")
    if len(groups) > 20:
        terminalreporter.write_line(f"  ... and {len(groups) - 20} more causes ({sum(len(g) for _, g in groups[20:])} "
                                    "failures)")
