"""pytest plugin: known deviations, kept as data in ``spec/xfails/<backend>.txt``.

A file holds blocks like::

    # free comments start with '#'
    xfail: torch's bfloat16 corr2d accumulates in float32 (the reason, one line)
    upstream: https://github.com/pytorch/pytorch/issues/NNNNN
    tests/test_exercises.py::test_exercise[torch-cpu-bfloat16-third_derivative-corr2d]

``xfail:`` marks the ids below it as expected failures (an xfail that passes is
reported in the verdict as "xfail entry passes, remove it"); ``skip:`` excludes
them (for a test that would crash or hang the framework).  Each reason needs an
``upstream:`` link before its first id.  Ids are matched exactly, whole test
ids with their parameters: no patterns, no prefixes.  An id that could have
been collected in this run (its file and its target were) but matches no
collected test is stale, and stops the run, as does a malformed file.

A generated property (``tests/test_generated.py``) is never a known deviation:
its failure prints the drawn case as a spec case, which goes under
``spec/cases/`` as a fixed case, and that case's ids are what a list holds.
The lists refuse a property's id, and a draft leaves property failures out of
its blocks.  Where a list accepts a verb's failures on a target (an entry on a
test parametrized by ``op``), the chapter-verb property leaves that verb out
on that target and says so (``known_verb``): a property does not fail again
on what a fixed case and its entry already carry.

``--xfails DIR`` reads the files from another folder (an out-of-tree adapter
keeps its own); the file is named after the adapter's label.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import KNOWN_DEVIATION, skip_mark

DEFAULT_DIR = Path(__file__).resolve().parents[1] / "spec" / "xfails"
DIRECTIVE = re.compile(r"^(xfail|skip|upstream):\s*(.*)$")
TEST_ID = re.compile(r"^tests/[\w/]+\.py::\w+(\[.+\])?$")
#: Where the generated properties live: their ids are never known deviations.
PROPERTIES = "tests/test_generated.py::"


@dataclass(frozen=True)
class Entry:
    test: str
    kind: str  # "xfail" or "skip"
    reason: str
    upstream: str
    where: str  # file:line

    @property
    def text(self) -> str:
        return f"{KNOWN_DEVIATION} ({self.where}): {self.reason} [{self.upstream}]"


def parse(path: Path) -> list[Entry]:
    """The entries of one file; a malformed line raises ``pytest.UsageError`` naming it."""
    entries, kind, reason, upstream, seen = [], None, None, None, {}
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line, where = raw.strip(), f"{path}:{n}"
        if not line or line.startswith("#"):
            continue
        if m := DIRECTIVE.match(line):
            key, value = m.groups()
            if not value:
                raise pytest.UsageError(f"{where}: '{key}:' needs a value")
            if value.startswith("<") and value.endswith(">"):
                raise pytest.UsageError(f"{where}: '{key}:' is still the draft's placeholder {value}: write the "
                                        "reason you accept this deviation for, and the upstream report's link")
            if key == "upstream":
                if reason is None:
                    raise pytest.UsageError(f"{where}: 'upstream:' before any 'xfail:' or 'skip:' reason")
                upstream = value
            else:
                kind, reason, upstream = key, value, None
            continue
        if not TEST_ID.match(line):
            raise pytest.UsageError(f"{where}: not a test id, nor 'xfail:', 'skip:', 'upstream:' or a comment: "
                                    f"{line!r}")
        if reason is None or upstream is None:
            raise pytest.UsageError(f"{where}: {line} has no reason and upstream link above it "
                                    "('xfail: ...' or 'skip: ...', then 'upstream: ...')")
        if line.startswith(PROPERTIES):
            raise pytest.UsageError(f"{where}: {line} is a generated property, which is never a known deviation: "
                                    "its failure printed the drawn case as a spec case; add that under spec/cases/ "
                                    "as a fixed case and list the fixed case's ids instead")
        if line in seen:
            raise pytest.UsageError(f"{where}: {line} is listed twice (first at {seen[line]})")
        seen[line] = where
        entries.append(Entry(line, kind, reason, upstream, where))
    return entries


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conv-conformance")
    group.addoption(
        "--xfails", dest="cc_xfails", default=None, metavar="DIR",
        help=f"folder of known-deviation lists, one <backend>.txt per adapter (default: {DEFAULT_DIR})")
    group.addoption(
        "--xfails-draft", dest="cc_xfails_draft", default=None, metavar="DIR",
        help="write DIR/<backend>.txt: a draft known-deviation list of this run's failures, one block per cause, "
             "whose placeholders must be filled in before the suite accepts it")


def write_draft(folder: Path, label: str, groups: list[tuple[str, list[dict]]], run: str) -> Path:
    """A known-deviation list for ``label`` from failures grouped by cause: every id exact, every reason and
    link a placeholder that :func:`parse` refuses until a person fills it in.  Failures of generated
    properties are not listable: they are named in a comment, with what to do instead."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"# Draft from run {run}: the failures of {label}, one block per cause.",
             "# Keep only what you accept as a known deviation; for each block write the reason and the link",
             "# of the upstream report (the suite refuses the <...> placeholders), then use this file as",
             f"# spec/xfails/{label}.txt or pass its folder with --xfails.", ""]
    properties = []
    for cause, entries in groups:
        fixed = sorted({e["test"] for e in entries if not e["test"].startswith(PROPERTIES)})
        properties += sorted({e["test"] for e in entries if e["test"].startswith(PROPERTIES)})
        if fixed:
            lines += [f"# {len(fixed)} x {cause[:200]}", "xfail: <why this deviation is accepted>",
                      "upstream: <link to the upstream report>"] + fixed + [""]
    if properties:
        lines += ["# Not listable: failures of generated properties (a property is never a known deviation).",
                  "# Each printed its drawn case as a spec case: add it under spec/cases/ as a fixed case, run",
                  "# again, and list the fixed case's ids.  A verb whose fixed cases are listed here is left",
                  "# out of the chapter-verb property on that target.",
                  *(f"#   {test}" for test in properties), ""]
    path = folder / f"{label}.txt"
    if path.exists():  # a list a person curated is never overwritten: the draft goes beside it
        path = folder / f"{label}.draft-{run[:8]}.txt"
    path.write_text("\n".join(lines))
    return path


def list_of(bk, given: str | None = None) -> Path:
    """The known-deviation list read for an adapter: ``--xfails DIR``'s, else the one the adapter ships
    (``Backend.known_deviations``), else ``spec/xfails/<label>.txt``."""
    if given:
        return Path(given) / f"{bk.label}.txt"
    if getattr(bk, "known_deviations", None):
        from backends.base import adapter_file

        return adapter_file(type(bk), bk.known_deviations)
    return DEFAULT_DIR / f"{bk.label}.txt"


ENTRIES = pytest.StashKey[list]()
#: (target id, verb) -> the first entry that accepts that verb's failures on that target, from this
#: process's collection (every xdist worker collects all items): read by the chapter-verb property.
KNOWN_VERBS: dict[tuple[str, str], Entry] = {}


def known_verb(target_id: str, verb: str) -> Entry | None:
    """The entry under which the lists accept ``verb``'s failures on this target, if any."""
    return KNOWN_VERBS.get((target_id, verb))


def entries(config: pytest.Config) -> list[Entry]:
    """The entries for the selected backends, parsed once per process."""
    if ENTRIES not in config.stash:
        from conftest import SELECTION

        given = config.getoption("cc_xfails")
        found = []
        for bk in config.stash[SELECTION].backends:
            path = list_of(bk, given)
            if not path.is_file():
                continue
            mine = parse(path)
            own = re.compile(rf"[\[-]{re.escape(bk.label)}-(?:cpu|gpu)\b")
            for e in mine:  # a list speaks for its own adapter: it cannot excuse another backend's failures
                if "[" in e.test and not own.search(e.test):
                    raise pytest.UsageError(f"{e.where}: {e.test} is not a test of {bk.label!r}, whose list this is")
            found += mine
        config.stash[ENTRIES] = found
    return config.stash[ENTRIES]


@pytest.hookimpl(tryfirst=True)  # before xdist starts its workers: a malformed list stops the run here
def pytest_sessionstart(session: pytest.Session) -> None:
    entries(session.config)


@pytest.hookimpl(tryfirst=True)  # before -k and --deselect drop items: staleness is judged on what was collected
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    by_id = {item.nodeid: item for item in items}
    for e in entries(config):
        item = by_id.get(e.test)
        if item is not None:
            op = getattr(getattr(item, "callspec", None), "params", {}).get("op")
            target = getattr(getattr(item, "callspec", None), "params", {}).get("target")
            if isinstance(op, str) and target is not None:
                KNOWN_VERBS.setdefault((target.id, op), e)
            mark = pytest.mark.xfail(reason=e.text, strict=False) if e.kind == "xfail" else skip_mark(e.text)
            item.add_marker(mark)
    if not hasattr(config, "workerinput"):  # under xdist the controller judges, from the ids the workers report
        check_stale(config, list(by_id))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids: list[str]) -> None:
    check_stale(node.config, ids)


def check_stale(config: pytest.Config, ids: list[str]) -> None:
    """Stop the run on an entry whose file and target were collected but which matches no collected id."""
    listed = entries(config)
    if not listed:
        return
    from conftest import SELECTION

    sel = config.stash[SELECTION]
    collected, files, targets = set(ids), set(), set()
    for nodeid in ids:
        files.add(nodeid.partition("::")[0])
        if (target := sel.target_of(nodeid)) is not None:
            targets.add(target.id)
    def could_have_run(test: str) -> bool:  # its file and its target were collected (no parameters: the file)
        target = sel.target_of(test)
        return test.partition("::")[0] in files and ("[" not in test or (target is not None and target.id in targets))

    stale = [e for e in listed if e.test not in collected and could_have_run(e.test)]
    if stale:
        pytest.exit("stale entries in the known-deviation lists (they match no collected test):\n"
                    + "\n".join(f"  {e.where}: {e.test}" for e in stale), returncode=pytest.ExitCode.USAGE_ERROR)
