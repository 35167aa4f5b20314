"""pytest plugin: results records, the tripwire, and the verdict.

With ``--results-dir DIR`` (env ``CONV_CONFORMANCE_RESULTS``) each run writes,
per backend, ``DIR/<backend>.json`` (versions, platform, devices, the precision
settings each mode reads back, seeds, and per test: outcome, reason, max
|error|, max error in tolerance units, determinism) and ``DIR/<backend>.npz``
(the outputs of the seeded random-valued cases and the fixed-start learning
trajectories, plain float64 arrays readable with ``allow_pickle=False``).

A run first removes its backends' old records.  Both files are written to a
temporary name in ``DIR`` and renamed into place, the ``.npz`` first and the
``.json`` last, so a crashed or killed run leaves no record and never a
half-written file; the agreement report treats the ``.json`` as the commit
marker.

Entries travel as plain data in each report's ``user_properties`` and are
collected where the session is recorded: in this process, or under
pytest-xdist in the controller, which also rebuilds an entry for a test whose
worker crashed.  At the end the tripwire compares, per target, the checks that
ran with the number the spec asks for, and the verdict is printed per backend.
"""

from __future__ import annotations

import io
import json
import os
import platform
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from backends.base import PRECISIONS
from tests import support

RECORD_FORMAT = "conv-conformance-record/1"
RESULTS = pytest.StashKey[list]()
NOTES = pytest.StashKey[dict]()
#: Name of the ``user_properties`` item that carries a test's entry from the
#: process that ran it (an xdist worker, or this one) to the one that records it.
ENTRY = "conv_conformance_entry"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("conv-conformance").addoption(
        "--results-dir", dest="cc_results", default=None,
        help="write one results record per backend into this folder (env CONV_CONFORMANCE_RESULTS)")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RESULTS] = []
    if not is_worker(config):
        config.pluginmanager.register(Recorder(config), "conv-conformance-recorder")


def is_worker(config: pytest.Config) -> bool:
    """True inside a pytest-xdist worker: the controller records and reports."""
    return hasattr(config, "workerinput")


@pytest.fixture(autouse=True)
def _notes(request: pytest.FixtureRequest):
    """Where the assertion helpers leave their measurements for this test."""
    notes = request.node.stash[NOTES] = {}
    support.NOTES.set(notes)
    yield
    support.NOTES.set(None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    if report.when == "call" or (report.when == "setup" and not report.passed):
        report.user_properties.append((ENTRY, _entry(item)))
    return report


def _entry(item: pytest.Item) -> dict:
    """What the record keeps of one test, as plain data (it crosses the xdist wire)."""
    params = getattr(item, "callspec", None)
    params = params.params if params else {}
    target = params.get("target") or params.get("train_target") or params.get("probe")
    case = params.get("case")
    notes = item.stash.get(NOTES, {})
    return {
        "test": item.nodeid, "module": item.module.__name__.rsplit(".", 1)[-1] if item.module else "",
        "function": item.originalname, "case": getattr(case, "id", None) or notes.get("case"),
        "op": params.get("op"), **_target_fields(target),
        "probe": "probe" in params,
        "max_abs_error": notes.get("max_abs_error"), "max_tolerance_units": notes.get("max_tolerance_units"),
        "determinism": notes.get("determinism"),
        "unexpected": notes.get("unexpected") or (
            f"{target.backend.label}.{notes['undeclared_verb']} is not in the manifest (verbs), "
            "but conforms: declare it" if "undeclared_verb" in notes else None),
        "_outputs": {k: np.asarray(v, dtype=np.float64).tolist() for k, v in notes.items() if k.startswith("output")},
    }


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

    def pytest_runtest_logreport(self, report) -> None:
        entry = dict(next((v for k, v in report.user_properties if k == ENTRY), None) or {})
        if not entry:
            if not report.failed or report.when == "teardown":
                return
            entry = _crashed_entry(self.config, report)  # nothing came back: the process running it died
        entry["outcome"], entry["reason"] = _outcome(report), _reason(report)[:2000]
        entry["_target"] = _target_of(self.config, entry)
        self.config.stash[RESULTS].append(entry)


def _outcome(report) -> str:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.failed:
        return "failed"
    return report.outcome


def _reason(report) -> str:
    if hasattr(report, "wasxfail"):
        return str(report.wasxfail)
    if report.skipped and isinstance(report.longrepr, tuple):
        return report.longrepr[2].removeprefix("Skipped: ")
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        return str(crash.message if crash else report.longrepr)
    return ""


def _crashed_entry(config: pytest.Config, report) -> dict:
    """An entry rebuilt from the test id alone, for a test whose process crashed
    (pytest-xdist reports "worker 'gw0' crashed while running ...")."""
    from conftest import SELECTION

    path, _, rest = report.nodeid.partition("::")
    function = rest.partition("[")[0]
    match = config.stash[SELECTION].target_of(report.nodeid)
    return {"test": report.nodeid, "module": Path(path).stem, "function": function, "case": None, "op": None,
            **_target_fields(match), "probe": function == "test_undeclared_dtype",
            "max_abs_error": None, "max_tolerance_units": None, "determinism": None, "unexpected": None,
            "_outputs": {}}


def _target_of(config: pytest.Config, entry: dict):
    """The counted target of an entry (``None`` for probes and backend-less tests)."""
    from conftest import SELECTION, Target

    if entry["backend"] is None or entry["probe"]:
        return None
    bk = next(b for b in config.stash[SELECTION].backends if b.label == entry["backend"])
    return Target(bk, entry["device"], entry["dtype"], entry["precision"])


def _results_dir(config: pytest.Config) -> Path | None:
    out = config.getoption("cc_results") or os.environ.get("CONV_CONFORMANCE_RESULTS")
    return Path(out) if out else None


def pytest_sessionstart(session: pytest.Session) -> None:
    """Remove this run's backends' previous records first: a run that then
    crashes or is killed leaves *no* record, never a stale one from before."""
    out = _results_dir(session.config)
    if out is None or is_worker(session.config):
        return
    from conftest import SELECTION

    for bk in session.config.stash[SELECTION].backends:
        for suffix in (".json", ".npz"):  # the commit marker first
            (out / f"{bk.label}{suffix}").unlink(missing_ok=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if is_worker(session.config):
        return
    if session.exitstatus == 0 and any(row[4] for row in tally(session.config)):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # the tripwire: a shrinking run is not green
    out = _results_dir(session.config)
    if out is None:
        return
    from conftest import SELECTION

    out.mkdir(parents=True, exist_ok=True)
    entries = session.config.stash[RESULTS]
    for bk in session.config.stash[SELECTION].backends:
        mine = [e for e in entries if e["backend"] == bk.label]
        write_record(out, bk, session.config.stash[SELECTION].devices, mine)


def write_record(out: Path, bk, devices, entries: list[dict]) -> None:
    arrays = {}
    for e in entries:
        if e["outcome"] in ("xfailed", "xpassed"):
            continue  # a known deviation's outputs stay out of the cross-framework comparison
        for key, value in e["_outputs"].items():
            what = e["op"] or key.removeprefix("output:")
            key = f"{e['case']}|{what}|{e['device']}|{e['dtype']}|{e['precision']}"
            arrays[key] = np.asarray(value, dtype=np.float64)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    _atomic_write(out / f"{bk.label}.npz", buf.getvalue())
    record = {
        "format": RECORD_FORMAT,
        "backend": bk.label, "framework": bk.module, "framework_version": bk.version(),
        "numpy_version": np.__version__, "python": sys.version.split()[0],
        "platform": platform.platform(), "machine": platform.machine(),
        "devices": {d: _describe(bk, d) for d in devices if d in bk.dtypes},
        "declared_dtypes": {d: list(v) for d, v in bk.dtypes.items()},
        "precision": bk.precision_settings(),
        "precision_modes": _mode_settings(bk, devices),
        "seeds": _seeds(),
        "outputs": f"{bk.label}.npz",
        "results": [{k: v for k, v in e.items() if not k.startswith("_")} for e in entries],
    }
    _atomic_write(out / f"{bk.label}.json", json.dumps(record, indent=1).encode())


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
    try:
        return bk.device_description(device)
    except Exception as exc:  # no such device here: say so rather than fail the record
        return f"unavailable ({type(exc).__name__})"


def _seeds() -> dict:
    import spec

    return {c.id: c.data["seed"] for c in spec.all_cases() if "seed" in c.data}


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


# -- the tripwire against a shrinking run --------------------------------------


def expected_checks(target) -> int:
    """How many checks the spec asks of one target: derived from the data, not from collection."""
    import spec

    n = sum(len(c.ops) for name in spec.SECTIONS for c in spec.cases(name) if c.kind in ("correlation", "error"))
    n += len(spec.cases("conv_layer", kind="parameters")) + len(spec.cases("receptive_field"))
    if target.dtype in target.backend.train_dtypes:
        n += 3 * len(spec.cases("learning_kernel"))  # replay, fixed start, contraction bound
    return n + 2  # tests/test_precision_and_determinism.py: restore after an error, repeat check


def _unfiltered(config: pytest.Config) -> bool:
    """True for a whole-suite run: no -k/-m selection and no narrower paths than tests/."""
    args = [a for a in config.args if not a.startswith("-")]
    whole = all(Path(a).resolve() == Path(config.rootpath, "tests").resolve() for a in args) or not args
    return whole and not config.getoption("keyword") and not config.getoption("markexpr")


def tally(config: pytest.Config) -> list[tuple[str, int, int, int, bool]]:
    """Per target: (id, expected, ran, skipped, short) -- short only for a whole-suite run."""
    ran, skipped, targets = Counter(), Counter(), {}
    for e in config.stash[RESULTS]:
        if e["_target"] is None:
            continue
        tid = e["_target"].id
        targets[tid] = e["_target"]
        (skipped if e["outcome"] == "skipped" else ran)[tid] += 1
    enforce = _unfiltered(config)
    rows = []
    for tid, target in sorted(targets.items()):
        expected = expected_checks(target)
        gpu_skipped = target.device == "gpu" and ran[tid] == 0 and skipped[tid] == expected
        short = enforce and not gpu_skipped and (ran[tid] == 0 or ran[tid] + skipped[tid] < expected)
        rows.append((tid, expected, ran[tid], skipped[tid], short))
    return rows


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    if is_worker(config):
        return
    rows = tally(config)
    if not rows:
        return
    terminalreporter.section("conv-conformance: checks per target")
    for tid, expected, ran, skipped, short in rows:
        flag = "  <-- FEWER THAN THE SPEC ASKS" if short else ""
        terminalreporter.write_line(f"{tid:34} expected {expected:4}  ran {ran:4}  skipped {skipped:4}{flag}")
    _verdict(terminalreporter, config)
    short = [r[0] for r in rows if r[4]]
    if short:
        terminalreporter.write_line(f"tripwire: {', '.join(short)} ran fewer checks than the spec asks: run failed",
                                    red=True)


@dataclass
class BackendVerdict:
    """What the verdict says of one backend."""

    sections: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    failed: list[dict] = field(default_factory=list)
    remarks: dict[str, None] = field(default_factory=dict)  # ordered, without repeats

    def add(self, e: dict) -> None:
        kind = e["outcome"]
        if e["reason"].startswith(support.NOT_IMPLEMENTED):
            kind = "not implemented"
        elif e["outcome"] != "xpassed" and e["reason"].startswith(support.KNOWN_DEVIATION):
            kind = "known deviation"
        self.sections[e["module"].removeprefix("test_")][kind] += 1
        if e["outcome"] == "failed":
            self.failed.append(e)
        if e["outcome"] == "passed" and e.get("unexpected"):
            self.remarks[f"unexpected pass: {e['unexpected']}"] = None
        if e["outcome"] == "passed" and (e.get("determinism") or "").startswith("not repeatable"):
            self.remarks[f"{e['_target'].id}: {e['determinism']}"] = None
        if e["outcome"] == "xpassed":
            self.remarks[f"xfail entry passes, remove it: {e['test']} ({e['reason']})"] = None

    @property
    def headline(self) -> str:
        if self.failed:
            return "NOT CONFORMANT"
        known = sum(n["known deviation"] for n in self.sections.values())
        return "CONFORMANT" + (f" with {known} known deviation{'s' if known > 1 else ''} (spec/xfails)"
                               if known else "")


def verdicts(entries: list[dict]) -> dict[str, BackendVerdict]:
    out: dict[str, BackendVerdict] = defaultdict(BackendVerdict)
    for e in entries:
        if e["backend"] is not None:
            out[e["backend"]].add(e)
    return dict(sorted(out.items()))


def _verdict(terminalreporter, config: pytest.Config) -> None:
    """Per backend: conformant or not, per chapter section, and how to reproduce each failure."""
    from conftest import SELECTION

    selected = {bk.label: getattr(bk, "selected_as", bk.label) for bk in config.stash[SELECTION].backends}
    for label, v in verdicts(config.stash[RESULTS]).items():
        terminalreporter.section(f"verdict: {label}: {v.headline}", sep="-")
        for section, n in sorted(v.sections.items()):
            extra = "".join(f"  {k} {n[k]:4}" for k in ("known deviation", "xpassed") if n[k])
            terminalreporter.write_line(
                f"  {section:26} passed {n['passed']:4}  failed {n['failed']:4}  skipped {n['skipped']:4}  "
                f"not implemented {n['not implemented']:4}{extra}")
        for line in v.remarks:
            terminalreporter.write_line(f"  {line}", yellow=True)
        for e in v.failed[:50]:
            mode = " --precision=fast" if e.get("precision") == "fast" else ""
            terminalreporter.write_line(
                f"  reproduce: pytest '{e['test']}' --backend={selected.get(label, label)}{mode}")
        if len(v.failed) > 50:
            terminalreporter.write_line(f"  ... and {len(v.failed) - 50} more failures")
