"""The verdict: what one run may say of each backend, and nothing it did not see.

CONFORMANT needs all of:

* no failed or errored test in any phase (setup, call, teardown);
* every check the spec asks of every selected target ran or skipped for a
  documented reason (``tests/checks.py``: distinct checks, by name);
* every skip one of the documented kinds (a verb outside the manifest, a
  ``spec/xfails`` entry, a GPU absent under ``--device all``); a skip or xfail
  the adapter raises itself is turned into a failure before it gets here
  (``tests/records.py``);
* the core conformance level (``docs/adapters.md``);
* a run that ended normally: not interrupted, not a usage or internal error,
  not collect-only.

Anything less is NOT CONFORMANT (something was seen to be wrong) or NO VERDICT
(too little was seen), each with its reasons.  This module only counts and
judges; ``tests/records.py`` collects the entries and prints.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import checks, support

#: Outcomes that count as a check that ran.
RAN = ("passed", "failed", "error", "xfailed", "xpassed")
#: Outcomes that fail a check.
FAILING = ("failed", "error")
#: How bad an outcome is, when one test reports more than once (phases, repeats): the worst is kept.
SEVERITY = {"passed": 0, "skipped": 1, "xfailed": 1, "xpassed": 2, "failed": 3, "error": 4}
SUITE_TESTS = Path(__file__).resolve().parent


def worst(a: str | None, b: str) -> bool:
    """True when outcome ``b`` is worse than ``a`` (``a`` None: nothing yet)."""
    return a is None or SEVERITY[b] > SEVERITY[a]


@dataclass(frozen=True)
class RunInfo:
    """What the session as a whole says, before any backend is judged."""

    exit_status: int
    collect_only: bool = False
    narrowed: tuple[str, ...] = ()  # what the person asked for that runs less than the whole suite

    @property
    def ended_badly(self) -> str | None:
        return {pytest.ExitCode.INTERRUPTED: "the run was interrupted",
                pytest.ExitCode.INTERNAL_ERROR: "the run ended in an internal error",
                pytest.ExitCode.USAGE_ERROR: "the run stopped on a usage error",
                pytest.ExitCode.NO_TESTS_COLLECTED: "no test was collected"}.get(self.exit_status)


META = SUITE_TESTS / "meta"


def asked_paths(config: pytest.Config) -> list[Path]:
    """The paths the command line asked for (test ids cut to their file), resolved from where it ran."""
    base = Path(config.invocation_params.dir)
    return [(base / str(a).partition("::")[0]).resolve() for a in config.args]


def meta_only(config: pytest.Config) -> bool:
    """True when only the harness's own tests (``tests/meta``) were asked for: no verdict to give."""
    paths = asked_paths(config)
    return bool(paths) and all(p.is_relative_to(META) for p in paths)


def narrowing(config: pytest.Config, deselected: int = 0) -> tuple[str, ...]:
    """Everything asked on the command line that runs less than the whole suite.

    Judged from the options' values, whatever their spelling, and from paths
    resolved against the suite's own ``tests`` folder (not the rootdir).
    """
    out = []
    base = Path(config.invocation_params.dir)
    for arg in config.args:
        path, sep, _ = str(arg).partition("::")
        if sep or (base / path).resolve() != SUITE_TESTS:
            out.append(f"path {arg}")
    for ignored in (config.getoption("ignore", None) or []):
        if (base / ignored).resolve() != META:
            out.append(f"--ignore {ignored}")
    for flag, dest in (("--ignore-glob", "ignore_glob"), ("--deselect", "deselect")):
        if value := config.getoption(dest, None):
            out.append(f"{flag} {' '.join(map(str, value))}")
    for flag, dest in (("-k", "keyword"), ("-m", "markexpr")):
        if (value := config.getoption(dest, None) or "").strip():
            out.append(f"{flag} {value!r}")
    for flag, dest in (("--lf", "lf"), ("--sw", "stepwise"), ("--sw-skip", "stepwise_skip")):
        if config.getoption(dest, False):
            out.append(flag)
    if config.getoption("maxfail", 0):
        out.append(f"--maxfail={config.getoption('maxfail')} (-x)")
    if deselected:
        out.append(f"{deselected} test(s) deselected")
    return tuple(out)


def skip_kind(reason: str, gpu_reasons: set[str]) -> str | None:
    """The documented kind of a skip, or ``None`` for one that is not documented."""
    if reason.startswith(support.NOT_IMPLEMENTED):
        return "not implemented"
    # The skips of the harness's own words (a convention or a dtype the adapter's manifest declares it does
    # not give): recognized by their words, because under xdist they are taken in the workers and the
    # verdict is drawn in the controller, whose SANCTIONED set never saw them.  A skip with these words
    # that the harness did not take is a failure where it happens (records._police), never a skip here.
    if reason.startswith(support.UNSUPPORTED):
        return "unsupported (declared)"
    if reason.startswith(support.MANIFEST_SAYS):
        return "not in the manifest"
    if reason.startswith(support.KNOWN_DEVIATION):
        return "known deviation"
    if reason.startswith(support.LEFT_TO_FIXED):
        return "left to fixed cases"
    if reason.startswith(support.STOPPED):
        return "stopped (--first-failure)"
    if reason in gpu_reasons:
        return "gpu absent"
    if reason in support.SANCTIONED:
        return "skipped"
    return None


@dataclass
class Tally:
    """One target's checks: what the spec asks, and what happened to each."""

    target: object
    expected: frozenset
    ran: set = field(default_factory=set)
    skipped: set = field(default_factory=set)
    passed: set = field(default_factory=set)
    unknown: set = field(default_factory=set)  # checks that ran but the spec does not list

    @property
    def missing(self) -> list:
        return sorted(self.expected - self.ran - self.skipped, key=checks.name)


@dataclass
class BackendVerdict:
    """What the verdict says of one backend, and why."""

    label: str
    sections: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    failed: list[dict] = field(default_factory=list)
    remarks: dict[str, None] = field(default_factory=dict)  # ordered, without repeats
    not_conformant: list[str] = field(default_factory=list)  # seen to be wrong, beyond failed checks
    no_verdict: list[str] = field(default_factory=list)  # too little seen to judge
    tallies: list[Tally] = field(default_factory=list)
    fails_run: bool = False  # turns a zero exit status into a failure
    entries: list[dict] = field(default_factory=list)
    deviation_list: str | None = None  # the known-deviation list read for it (tests/records.py), if any

    @property
    def headline(self) -> str:
        if self.failed or self.not_conformant:
            return "NOT CONFORMANT"
        if self.no_verdict:
            return "NO VERDICT"
        known = sum(n["known deviation"] for n in self.sections.values())
        where = self.deviation_list or "spec/xfails"
        return "CONFORMANT" + (f" with {known} known deviation{'s' if known > 1 else ''} ({where})" if known else "")

    @property
    def complete(self) -> bool:
        """The run saw everything the spec asks of this backend: a record that may be compared."""
        return not self.no_verdict

    @property
    def ran(self) -> int:
        return sum(len(t.ran) for t in self.tallies)

    def add(self, e: dict, gpu_reasons: set[str]) -> None:
        self.entries.append(e)
        kind = e["outcome"]
        if kind == "skipped":
            kind = skip_kind(e["reason"], gpu_reasons)
            if kind is None:
                kind = "skipped"
                self.not_conformant.append(f"a skip that is not one of the documented kinds: {e['test']}: "
                                           f"{e['reason'][:200]}")
        elif kind == "xfailed":
            kind = "known deviation"
        self.sections[e["module"].removeprefix("test_")][kind] += 1
        if e["outcome"] in FAILING:
            self.failed.append(e)
        if e["outcome"] == "passed" and e.get("unexpected"):
            self.remarks[f"unexpected pass: {e['unexpected']}"] = None
        elif e.get("probe_result"):
            self.remarks[f"manifest probe: {e['probe_result']}"] = None
        if e.get("left_out"):  # a property that stepped aside from verbs a known-deviation list accepts
            self.remarks[e["left_out"]] = None
        if e["outcome"] == "passed" and (e.get("determinism") or "").startswith("not repeatable"):
            self.remarks[f"{e['_target'].id}: {e['determinism']}"] = None
        if e["outcome"] == "xpassed":
            self.remarks[f"xfail entry passes, remove it: {e['test']} ({e['reason']})"] = None


def judge(backend, targets: list, entries: list[dict], run: RunInfo, gpu_reasons: set[str],
          errors: list[str] = ()) -> BackendVerdict:
    """The verdict on one backend from its targets (all that were selected) and its entries."""
    v = BackendVerdict(backend.label)
    if (older := support.contract_warning(backend)) is not None:
        v.remarks[older] = None
    tallies = {t.id: Tally(t, checks.expected(t)) for t in targets}
    for e in entries:
        v.add(e, gpu_reasons)
        t = e["_target"]
        if t is None or t.id not in tallies:
            continue
        tally, key = tallies[t.id], tuple(e["check"]) if e.get("check") else None
        if key is None or key not in tally.expected:
            tally.unknown.add(key or e["test"])
            continue
        if e["outcome"] in RAN:
            tally.ran.add(key)
            if e["outcome"] == "passed":
                tally.passed.add(key)
        else:
            tally.skipped.add(key)
    v.tallies = list(tallies.values())
    v.not_conformant += [f"the harness could not ask the adapter: {err}" for err in errors]
    missing = [(t, t.missing) for t in v.tallies if t.missing]
    unknown = sorted(str(k) for t in v.tallies for k in t.unknown)
    if run.collect_only:
        v.no_verdict.append("collect-only run: no check ran")
    elif run.ended_badly:
        v.no_verdict.append(run.ended_badly)
    if missing and not run.collect_only:
        n = sum(len(m) for _, m in missing)
        first = f"{missing[0][0].target.id}: {checks.name(missing[0][1][0])}"
        if run.narrowed:
            v.no_verdict.append(f"the run was narrowed ({'; '.join(run.narrowed)}): {n} check(s) the spec asks "
                                f"did not run (first: {first}); a verdict needs the whole suite")
        else:
            v.no_verdict.append(f"tripwire: {n} check(s) the spec asks did not run (first: {first})")
            v.fails_run = True
    if unknown:
        v.no_verdict.append(f"ran check(s) the spec does not list (tests/checks.py is out of date?): "
                            f"{', '.join(unknown[:3])}")
        v.fails_run = True
    if not run.collect_only and v.ran == 0:
        why = "every target was skipped" if any(t.skipped for t in v.tallies) else "no target was selected"
        v.no_verdict.append(f"no check ran for this backend ({why}): a backend that was asked for must be tested")
        v.fails_run = v.fails_run or not run.narrowed
    stopped = sum(n["stopped (--first-failure)"] for n in v.sections.values())
    if v.ran and not missing and not stopped and not _core_level(v.tallies):
        v.not_conformant.append(
            "below the core conformance level (docs/adapters.md): no target passed every check of "
            f"{' or of '.join(checks.CORE_OPS)}")
    if stopped and not v.failed:  # the words of a stop, with no failure that stopped it
        v.not_conformant.append(f"{stopped} check(s) skipped as stopped by --first-failure, but no check failed")
    elif stopped:
        v.remarks[f"--first-failure: stopped at its first failure; {stopped} check(s) not run"] = None
    v.fails_run = v.fails_run or bool(v.not_conformant)
    return v


def _core_level(tallies: list[Tally]) -> bool:
    return any(checks.core(t.target, op) <= t.passed for t in tallies for op in checks.CORE_OPS)


def cause(e: dict) -> str:
    """A failure's first line with what varies between its instances (the target, the case, counts and
    values) taken out, so that one mistake made in every dtype and case reads as one cause."""
    first = (e.get("reason") or e["outcome"]).splitlines()[0]
    first = re.sub(r" \((?:[\w.]+-)?(?:cpu|gpu)-\w+(?:-fast)?\)", "", first)  # the target id in parentheses
    first = re.sub(r" on [a-z]\w*", "", first)  # 'on <case id>'
    first = re.sub(r"np\.float\d+\(([^)]*)\)", r"\1", first)
    first = re.sub(r"'[0-9a-f]{16}'", "'<digest>'", first)  # tests/globalstate.py's RNG fingerprints
    first = re.sub(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e-?\d+)?(?![\w.])", "N", first.removeprefix("Failed: "))
    return first


def by_cause(failed: list[dict]) -> list[tuple[str, list[dict]]]:
    """Failures grouped by :func:`cause`, the most frequent first."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for e in failed:
        groups[cause(e)].append(e)
    return sorted(groups.items(), key=lambda kv: -len(kv[1]))
