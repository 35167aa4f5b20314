"""The findings catalogue (findings/README.md): check it, render docs/findings.md, run the reproductions.

    python tools/findings.py check          # every finding complete; xfails and findings point at each other;
                                            # docs/findings.md is what `write` would write
    python tools/findings.py write          # regenerate docs/findings.md
    python tools/findings.py run BACKEND    # run BACKEND's reproductions with this interpreter (node for .mjs):
                                            # each must still exit 1

Needs only the standard library (tomllib): it runs in the lint env and in every framework env.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
FINDINGS = ROOT / "findings"
DOC = ROOT / "docs" / "findings.md"
XFAILS = ROOT / "spec" / "xfails"
ADAPTERS = ROOT / "backends"
RUNNERS = ROOT / "runners"
#: How xfail reasons and adapters name a finding: ``findings/<framework>/<slug>``.
KEY = re.compile(r"findings/[\w-]+/[\w-]+")
REQUIRED = ("title", "backends", "package", "op", "differs", "measured", "since", "upstream", "upstream_state")
STATES = ("open", "closed", "not reported")
#: A reproduction's exit status: 1 while the deviation is present; 0 once it is gone; 3, for a finding that
#: declares ``depends_on_cpu = true`` only: this machine's CPU does not take the path that deviates.
PRESENT, GONE, NOT_HERE = 1, 0, 3


class FindingError(ValueError):
    """A finding, or a reference to one, that is not as findings/README.md says."""


@dataclass(frozen=True)
class Finding:
    path: Path  # the .toml
    data: dict

    @property
    def key(self) -> str:
        """``findings/<framework>/<slug>``: how xfail reasons and adapters name it."""
        return self.path.with_suffix("").relative_to(ROOT).as_posix()

    @property
    def script(self) -> Path:
        for suffix in (".py", ".mjs"):
            if self.path.with_suffix(suffix).is_file():
                return self.path.with_suffix(suffix)
        raise FindingError(f"{self.key}: no reproduction ({self.key}.py or .mjs) beside its .toml")

    def command(self) -> list[str]:
        script = self.script
        return ["node", str(script)] if script.suffix == ".mjs" else [sys.executable, str(script)]

    def __getattr__(self, name: str):
        try:
            return self.__dict__["data"][name]
        except KeyError:
            raise AttributeError(name) from None


def load() -> list[Finding]:
    found = []
    for path in sorted(FINDINGS.glob("*/*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise FindingError(f"{path.relative_to(ROOT)}: not TOML: {exc}") from exc
        f = Finding(path, data)
        missing = [k for k in REQUIRED if not data.get(k)]
        if missing:
            raise FindingError(f"{f.key}: missing {', '.join(missing)} (findings/README.md)")
        if data["upstream_state"] not in STATES:
            raise FindingError(f"{f.key}: upstream_state {data['upstream_state']!r}: one of {', '.join(STATES)}")
        reported = data["upstream"].startswith("https://")
        if reported == (data["upstream_state"] == "not reported"):
            raise FindingError(f"{f.key}: upstream {data['upstream']!r} and upstream_state "
                               f"{data['upstream_state']!r} disagree (a link is reported; 'not reported' has none)")
        if not reported and not data.get("draft", "").strip():
            raise FindingError(f"{f.key}: not reported, so it needs a draft issue text ('draft')")
        if not isinstance(data["backends"], list) or not all(isinstance(b, str) for b in data["backends"]):
            raise FindingError(f"{f.key}: backends must be a list of the suite's backend names")
        f.script  # noqa: B018  (raises when the reproduction is missing)
        found.append(f)
    return found


def _xfail_reasons() -> list[tuple[str, str]]:
    """``(where, reason)`` of every xfail or skip entry of the shipped lists."""
    out = []
    for path in sorted(XFAILS.glob("*.txt")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if m := re.match(r"^(xfail|skip):\s*(.*)$", line):
                out.append((f"{path.relative_to(ROOT)}:{n}", m.group(2)))
    return out


def check(findings: list[Finding]) -> list[str]:
    """Every problem of the catalogue and its references, as sentences."""
    problems = []
    keys = {f.key for f in findings}
    named = set()
    for where, reason in _xfail_reasons():
        cited = set(KEY.findall(reason))
        if not cited:
            problems.append(f"{where}: the entry names no finding (findings/<framework>/<slug>): {reason[:100]}")
        for key in cited - keys:
            problems.append(f"{where}: names {key}, which is not a finding")
        named |= cited
    declared = "\n".join(p.read_text() for p in sorted(ADAPTERS.glob("*.py")))
    declared += "\n".join(p.read_text() for p in sorted(RUNNERS.glob("*/*.*")) if p.suffix in (".mjs", ".java"))
    named |= set(KEY.findall(declared))
    for f in findings:
        if f.key not in named:
            problems.append(f"{f.key}: no xfail entry or adapter declaration names it")
    current = DOC.read_text() if DOC.is_file() else ""
    if current != render(findings):
        problems.append(f"{DOC.relative_to(ROOT)} is stale: run `python tools/findings.py write`")
    return problems


def render(findings: list[Finding]) -> str:
    lines = ["# Framework differences found", "",
             "Generated from `findings/` by `python tools/findings.py write`; do not edit. Each row is a deviation",
             "of a framework from the spec that the suite found; its reproduction imports only that framework and",
             "NumPy, prints expected against observed, and exits 1 while the deviation is present (every CI run",
             "runs it in the framework's tox env). A finding that is not reported upstream has a draft issue in",
             "its `.toml`.", "",
             "| framework | op | what differs | since | upstream | reproduce |",
             "| --- | --- | --- | --- | --- | --- |"]
    for f in sorted(findings, key=lambda f: (f.backends[0], f.key)):
        upstream = (f"[{f.upstream_state}]({f.upstream})" if f.upstream.startswith("https://")
                    else "not reported (draft in the .toml)")
        command = " ".join(["node" if f.script.suffix == ".mjs" else "python", f.script.relative_to(ROOT).as_posix()])
        cell = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
        lines.append(f"| {cell(', '.join(f.backends))} | `{cell(f.op)}` | {cell(f.differs)} | {cell(f.since)} | "
                     f"{upstream} | [`{command}`](../{f.key}.toml) |")
    return "\n".join(lines) + "\n"


def version_of(package: str) -> str:
    if package.startswith("npm:"):
        manifest = RUNNERS / "tfjs" / "node_modules" / package.removeprefix("npm:") / "package.json"
        return json.loads(manifest.read_text())["version"] if manifest.is_file() else "(not installed)"
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def run(findings: list[Finding], backend: str) -> int:
    mine = [f for f in findings if backend in f.backends]
    if not mine:
        print(f"findings: none for {backend}")
        return 0
    failed = 0
    for f in mine:
        try:
            done = subprocess.run(f.command(), cwd=ROOT, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            print(f"findings: {f.key}: the reproduction did not finish in 600 s")
            failed += 1
            continue
        version = f"{f.package} {version_of(f.package)}"
        if done.returncode == PRESENT:
            print(f"findings: {f.key}: reproduces in {version}")
        elif done.returncode == NOT_HERE and f.data.get("depends_on_cpu") is True:
            said = (done.stdout.strip().splitlines() or [""])[-1]
            print(f"findings: {f.key}: does not apply on this machine's CPU ({version}): {said}")
        elif done.returncode == GONE:
            print(f"findings: {f.key}: no longer reproduces in {version}: the deviation looks fixed; remove the "
                  "xfail and update the finding")
            failed += 1
        else:
            tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
            print(f"findings: {f.key}: the reproduction could not run (exit {done.returncode}):\n    "
                  + "\n    ".join(tail))
            failed += 1
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/findings.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("check")
    sub.add_parser("write")
    runs = sub.add_parser("run")
    runs.add_argument("backend")
    args = parser.parse_args(argv)
    try:
        findings = load()
    except FindingError as exc:
        print(f"findings: {exc}", file=sys.stderr)
        return 1
    if args.what == "write":
        DOC.write_text(render(findings))
        print(f"findings: wrote {DOC.relative_to(ROOT)} ({len(findings)} findings)")
        return 0
    if args.what == "run":
        return run(findings, args.backend)
    problems = check(findings)
    for p in problems:
        print(f"findings: {p}", file=sys.stderr)
    print(f"findings: {len(findings)} findings, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
