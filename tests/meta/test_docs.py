"""The README is the front door and docs/ the rest (issue 26): a newcomer finds the two commands on the first
screen, every framework of the matrix in the table with its findings, and every docs page one link away; the
site (mkdocs.yml) builds strictly, so that a broken link, anchor or page fails CI. Each check is also shown a
README or a site that breaks it, and must say so."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys

import tomllib
import yaml

from tests.meta.test_broken_adapters import ROOT

README = ROOT / "README.md"
#: The README's length: a page a newcomer reads in five minutes (the issue asks about 150 lines).
MAX_LINES = 160
#: The first screen: the quick start's two commands, and the command CI runs, must be on it.
FIRST_SCREEN = 40
#: The quick start from a bare machine: tox into a venv, then a first verdict (the numpy env).
QUICK_START = ("python3.11 -m venv .venv && .venv/bin/pip install 'tox", ".venv/bin/tox -e numpy")


def _ci_command() -> str:
    """The tox command .ci/run runs, as the README writes it (`tox run -m test` is `tox -m test`)."""
    line = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln.startswith("tox ")][-1]
    return line.replace("tox run ", "tox ")


def _matrix() -> list[str]:
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    return [name.strip() for name in tox["matrix"]["backends"].split(",")]


def _findings_per_backend() -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in sorted((ROOT / "findings").glob("*/*.toml")):
        for backend in tomllib.loads(path.read_text())["backends"]:
            counts[backend] = counts.get(backend, 0) + 1
    return counts


def _nav_pages() -> set[str]:
    def walk(entries):
        for entry in entries:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            yield from walk(value) if isinstance(value, list) else [value]
    return set(walk(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]))


def readme_problems(text: str, pages: list[str], nav: set[str], matrix: list[str], findings: dict[str, int],
                    ci_command: str) -> list[str]:
    """What is wrong with a README `text`, given the docs pages, the site's nav, the [matrix] backends, the
    findings per backend and the command CI runs; [] when nothing is."""
    problems = []
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        problems.append(f"README.md has {len(lines)} lines, more than {MAX_LINES}")
    screen = "\n".join(lines[:FIRST_SCREEN])
    for command in (*QUICK_START, ci_command):
        if command not in screen:
            problems.append(f"README.md: {command!r} is not in its first {FIRST_SCREEN} lines")
    for page in pages:
        if f"](docs/{page}" not in text and page not in nav:
            problems.append(f"docs/{page} is linked neither from README.md nor from mkdocs.yml's nav")
    rows = {m[1]: m for m in re.finditer(r"^\| `([\w-]+)` \|(.*)\| (\d+) \|$", text, re.MULTILINE)}
    for backend in matrix:
        if backend not in rows:
            problems.append(f"README.md: the framework table has no row for {backend} (tox.ini [matrix])")
            continue
        row, count = rows[backend][2], int(rows[backend][3])
        if count != findings.get(backend, 0):
            problems.append(f"README.md: {backend} has {count} findings in the framework table, "
                            f"{findings.get(backend, 0)} in findings/")
        listed = f"spec/xfails/{backend}.txt"
        if (ROOT / listed).exists() != (f"known deviations (`{listed}`" in row):
            problems.append(f"README.md: {backend}'s verdict in the framework table "
                            f"{'does not name' if (ROOT / listed).exists() else 'names'} its known-deviation list "
                            f"{listed}, which {'exists' if (ROOT / listed).exists() else 'does not exist'}")
    return problems


def _problems(text: str, pages: list[str] | None = None, nav: set[str] | None = None) -> list[str]:
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md")) if pages is None else pages
    return readme_problems(text, pages, _nav_pages() if nav is None else nav, _matrix(), _findings_per_backend(),
                           _ci_command())


def test_the_readme_is_short_and_has_the_commands_the_frameworks_and_a_way_to_every_page():
    assert _problems(README.read_text()) == []
    assert _nav_pages() >= {p.name for p in (ROOT / "docs").glob("*.md")}  # every page is in the site


def test_a_readme_that_breaks_each_rule_is_caught():
    text = README.read_text()
    lines = text.splitlines()
    assert _problems("\n".join(lines + ["more"] * (MAX_LINES + 1 - len(lines)))) == [
        f"README.md has {MAX_LINES + 1} lines, more than {MAX_LINES}"]
    # The commands pushed below the first screen (they are still in the README, just not where a newcomer looks).
    pushed = "\n".join(lines[:1] + [""] * FIRST_SCREEN + lines[1:])
    assert any("tox -e numpy' is not in its first 40 lines" in p for p in _problems(pushed))
    assert any(f"{_ci_command()!r} is not in its first" in p for p in _problems(pushed))
    # A page no one links to; a framework missing from the table; a findings count that is stale.
    assert _problems(text, pages=["orphan.md"], nav=set()) == [
        "docs/orphan.md is linked neither from README.md nor from mkdocs.yml's nav"]
    backend = _matrix()[-1]
    row = next(ln for ln in lines if ln.startswith(f"| `{backend}` |"))
    assert _problems(text.replace(row + "\n", "")) == [
        f"README.md: the framework table has no row for {backend} (tox.ini [matrix])"]
    # A verdict that hides its known-deviation list, or names one that does not exist.
    listed = next(b for b in _matrix() if (ROOT / "spec" / "xfails" / f"{b}.txt").exists())
    listed_row = next(ln for ln in lines if ln.startswith(f"| `{listed}` |"))
    hidden = listed_row.replace(f" with known deviations (`spec/xfails/{listed}.txt`", " (")
    assert _problems(text.replace(listed_row, hidden)) == [
        f"README.md: {listed}'s verdict in the framework table does not name its known-deviation list "
        f"spec/xfails/{listed}.txt, which exists"]
    unlisted = next(b for b in _matrix() if not (ROOT / "spec" / "xfails" / f"{b}.txt").exists())
    unlisted_row = next(ln for ln in lines if ln.startswith(f"| `{unlisted}` |"))
    claimed = unlisted_row.replace("| CONFORMANT", f"| CONFORMANT with known deviations (`spec/xfails/{unlisted}.txt`)")
    assert _problems(text.replace(unlisted_row, claimed)) == [
        f"README.md: {unlisted}'s verdict in the framework table names its known-deviation list "
        f"spec/xfails/{unlisted}.txt, which does not exist"]
    stale = re.sub(r"\| (\d+) \|$", lambda m: f"| {int(m[1]) + 1} |", row)
    assert _problems(text.replace(row, stale)) == [
        f"README.md: {backend} has {_findings_per_backend().get(backend, 0) + 1} findings in the framework table, "
        f"{_findings_per_backend().get(backend, 0)} in findings/"]


def _build(root) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(root / "site")],
                          cwd=root, capture_output=True, text=True, timeout=120)


def _checkout(tmp_path):
    """A copy of the checkout's files (what the site links to), without tox's, git's and the results' folders."""
    root = tmp_path / "checkout"
    skipped = ("results", "site", "node_modules", "__pycache__")
    shutil.copytree(ROOT, root, ignore=lambda folder, names: [n for n in names if n.startswith(".") or n in skipped])
    return root


def test_the_site_builds_strictly_and_fails_on_every_kind_of_broken_link(tmp_path):
    root = _checkout(tmp_path)
    built = _build(root)
    assert built.returncode == 0, built.stderr
    assert (root / "site" / "index.html").exists() and (root / "site" / "guarantees" / "index.html").exists()

    # Each break alone: a link to a page that does not exist, to an anchor that does not exist (on another page
    # and on its own), to a file of the checkout that does not exist, the same from the README, and a page
    # left out of the nav. Each must fail the strict build and be named.
    page = root / "docs" / "architecture.md"
    original, readme = page.read_text(), (root / "README.md").read_text()
    breaks = {
        "[x](no-such-page.md)": "'no-such-page.md'",
        "[x](adapters.md#no-such-anchor)": "does not contain an anchor '#no-such-anchor'",
        "[x](#no-such-anchor)": "there is no such anchor on this page",
        "[x](../backends/no_such_adapter.py)": "names backends/no_such_adapter.py, which does not exist",
    }
    for link, message in breaks.items():
        page.write_text(original + f"\nSee {link}.\n")
        broken = _build(root)
        assert broken.returncode != 0 and message in broken.stderr, (link, broken.stderr)
    page.write_text(original)
    for link, message in {"[x](docs/no-such-page.md)": "names docs/no-such-page.md, which does not exist",
                          "[x](docs/gpu.md#no-such-anchor)": "does not contain an anchor '#no-such-anchor'",
                          "[x](backends/no_such.py)": "names backends/no_such.py, which does not exist"}.items():
        (root / "README.md").write_text(readme + f"\nSee {link}.\n")
        broken = _build(root)
        assert broken.returncode != 0 and message in broken.stderr, (link, broken.stderr)
    (root / "README.md").write_text(readme)
    (root / "docs" / "orphan.md").write_text("# Not in the nav\n")
    broken = _build(root)
    assert broken.returncode != 0 and "orphan.md" in broken.stderr, broken.stderr


def test_a_link_to_the_checkout_outside_docs_is_rendered_as_its_path(tmp_path):
    """The site carries no code: a link from a page to ../backends/base.py becomes its text and path, so that
    the page does not link to nowhere; a link from the README into docs/ becomes a link between pages."""
    root = _checkout(tmp_path)
    page = root / "docs" / "architecture.md"
    page.write_text(page.read_text() + "\nThe [contract](../backends/base.py#L1) and [`tools/findings.py`]"
                    "(../tools/findings.py).\n")
    built = _build(root)
    assert built.returncode == 0, built.stderr
    html = (root / "site" / "architecture" / "index.html").read_text()
    assert "The contract (<code>backends/base.py</code>) and <code>tools/findings.py</code>." in html
    assert 'href="running/#the-frameworks-verbs-and-dtypes"' in (root / "site" / "index.html").read_text()
