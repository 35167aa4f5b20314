"""pytest plugin: one machine-readable results record per backend and run.

With ``--results-dir DIR`` (env ``CONV_CONFORMANCE_RESULTS``) each run writes,
per backend, ``DIR/<backend>.json`` (versions, platform, devices, precision
settings, seeds, and per test: outcome, skip reason, max |error|, max error in
tolerance units) and ``DIR/<backend>.npz`` (the outputs of the seeded
random-valued cases and the fixed-start learning trajectories, plain float64
arrays readable with ``allow_pickle=False``).

Both are written to a temporary name in ``DIR`` and renamed into place, the
``.npz`` first and the ``.json`` last, so a crashed or killed run leaves no
record (or the previous one) and never a half-written file; the agreement
report treats the ``.json`` as the commit marker.
"""

from __future__ import annotations

import io
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tests import support

RECORD_FORMAT = "conv-conformance-record/1"
RESULTS = pytest.StashKey[list]()
NOTES = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("conv-conformance").addoption(
        "--results-dir", dest="cc_results", default=None,
        help="write one results record per backend into this folder (env CONV_CONFORMANCE_RESULTS)")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RESULTS] = []


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
        item.config.stash[RESULTS].append(_entry(item, report))
    return report


def _entry(item: pytest.Item, report) -> dict:
    params = getattr(item, "callspec", None)
    params = params.params if params else {}
    target = params.get("target") or params.get("train_target")
    case = params.get("case")
    notes = item.stash.get(NOTES, {})
    reason = ""
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = report.longrepr[2].removeprefix("Skipped: ")
    elif report.failed:
        reason = str(getattr(report.longrepr, "reprcrash", None) and report.longrepr.reprcrash.message or "")
    return {
        "test": item.nodeid, "module": item.module.__name__.rsplit(".", 1)[-1] if item.module else "",
        "function": item.originalname, "case": getattr(case, "id", None) or notes.get("case"),
        "op": params.get("op"),
        "backend": target.backend.label if target else None, "device": target.device if target else None,
        "dtype": target.dtype if target else None,
        "outcome": "failed" if report.failed and report.when == "setup" else report.outcome,
        "reason": reason[:2000],
        "max_abs_error": notes.get("max_abs_error"), "max_tolerance_units": notes.get("max_tolerance_units"),
        "_outputs": {k: v for k, v in notes.items() if k.startswith("output")},
        "_target": target,
    }


def pytest_sessionfinish(session: pytest.Session) -> None:
    if session.exitstatus == 0 and any(row[4] for row in tally(session.config)):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # the tripwire: a shrinking run is not green
    out = session.config.getoption("cc_results") or os.environ.get("CONV_CONFORMANCE_RESULTS")
    if not out:
        return
    from conftest import SELECTION

    Path(out).mkdir(parents=True, exist_ok=True)
    entries = session.config.stash[RESULTS]
    for bk in session.config.stash[SELECTION].backends:
        mine = [e for e in entries if e["backend"] == bk.label]
        write_record(Path(out), bk, session.config.stash[SELECTION].devices, mine)


def write_record(out: Path, bk, devices, entries: list[dict]) -> None:
    arrays = {}
    for e in entries:
        for key, value in e["_outputs"].items():
            what = e["op"] or key.removeprefix("output:")
            arrays[f"{e['case']}|{what}|{e['device']}|{e['dtype']}"] = np.asarray(value, dtype=np.float64)
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
        "seeds": _seeds(),
        "outputs": f"{bk.label}.npz",
        "results": [{k: v for k, v in e.items() if not k.startswith("_")} for e in entries],
    }
    _atomic_write(out / f"{bk.label}.json", json.dumps(record, indent=1).encode())


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
    return n


def _unfiltered(config: pytest.Config) -> bool:
    """True for a whole-suite run: no -k/-m selection and no narrower paths than tests/."""
    args = [a for a in config.args if not a.startswith("-")]
    whole = all(Path(a).resolve() == Path(config.rootpath, "tests").resolve() for a in args) or not args
    return whole and not config.getoption("keyword") and not config.getoption("markexpr")


def tally(config: pytest.Config) -> list[tuple[str, int, int, int, bool]]:
    """Per target: (id, expected, ran, skipped, short) -- short only for a whole-suite run."""
    from collections import Counter

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


NOT_IMPLEMENTED = "not implemented by the adapter"


def _verdict(terminalreporter, config: pytest.Config) -> None:
    """Per backend: conformant or not, per chapter section, and how to reproduce each failure."""
    from collections import Counter, defaultdict

    by_backend: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    failed: dict[str, list[dict]] = defaultdict(list)
    selected = {}
    for e in config.stash[RESULTS]:
        if e["_target"] is None:
            continue
        bk = e["_target"].backend
        selected[bk.label] = getattr(bk, "selected_as", bk.label)
        kind = "not implemented" if e["reason"].startswith(NOT_IMPLEMENTED) else e["outcome"]
        by_backend[bk.label][e["module"].removeprefix("test_")][kind] += 1
        if e["outcome"] == "failed":
            failed[bk.label].append(e)
    for label, sections in sorted(by_backend.items()):
        verdict = "NOT CONFORMANT" if failed[label] else "CONFORMANT"
        terminalreporter.section(f"verdict: {label}: {verdict}", sep="-")
        for section, n in sorted(sections.items()):
            terminalreporter.write_line(
                f"  {section:20} passed {n['passed']:4}  failed {n['failed']:4}  skipped {n['skipped']:4}  "
                f"not implemented {n['not implemented']:4}")
        for e in failed[label][:50]:
            terminalreporter.write_line(f"  reproduce: pytest '{e['test']}' --backend={selected[label]}")
        if len(failed[label]) > 50:
            terminalreporter.write_line(f"  ... and {len(failed[label]) - 50} more failures")
