"""The suite as a package: a wheel that installs one top-level name, and the ``conv-conformance``
command that runs the suite's own tree from any folder, for an adapter author's CI pinned to a
version of the suite (docs/adapters.md, "In your own CI")."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest
import tomllib

import spec
from tests.meta.test_broken_adapters import ROOT

#: A broken adapter of the adapter author's own, importable from the folder the suite is installed in.
FLIPPED = '''
from backends.numpy import NumpyBackend


class Flipped(NumpyBackend):
    """corr2d flips the kernel: a convolution where a cross-correlation is asked for."""
    name = None

    def corr2d(self, X, K):
        return super().corr2d(X, K[::-1, ::-1])
'''


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The suite's wheel, built from this checkout without network and installed into a folder of
    its own (standing for site-packages), with an adapter module beside it."""
    tmp = tmp_path_factory.mktemp("installed")
    # Built from a copy of what git tracks: setuptools writes build/ and *.egg-info where it builds,
    # and a stale build/ would carry files the checkout no longer has into the wheel.
    source = tmp / "source"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in tracked.stdout.split("\0"):
        if name and (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                            "-w", str(tmp / "dist"), "-q"], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp / "dist").glob("*.whl")
    target = tmp / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel),
                           "-q"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (target / "flipper.py").write_text(FLIPPED)
    # A folder of the adapter author's, with a conftest.py and a pytest.ini that must take no part.
    work = tmp / "work"
    work.mkdir()
    (work / "conftest.py").write_text("raise SystemExit('the current folder conftest.py was imported')\n")
    (work / "pytest.ini").write_text("[pytest]\naddopts = -p no_such_plugin\n")
    return wheel, target, work


def _run(installed, command: str) -> subprocess.CompletedProcess:
    """A shell command line in the adapter author's folder, with the installed suite on the paths."""
    _, target, work = installed
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONV_CONFORMANCE_")}
    env["PATH"] = f"{target / 'bin'}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(target)
    return subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, timeout=600)


def test_the_wheel_installs_one_top_level_name_and_not_the_harness_own_tests(installed):
    wheel, target, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"conv_conformance", "conv_conformance-0.2.0.dist-info"}
    assert not any("/tests/meta/" in n for n in names)
    assert {"conv_conformance/suite/conftest.py", "conv_conformance/suite/pyproject.toml",
            "conv_conformance/suite/spec/schema.json", "conv_conformance/suite/report/record.schema.json",
            "conv_conformance/suite/spec/cases/exercises.json"} <= set(names)
    # Every spec file the fingerprint covers is in the wheel: the installed suite is this spec.
    cases = {f"conv_conformance/suite/spec/cases/{p.name}" for p in spec.CASES_DIR.glob("*.json")}
    assert cases <= set(names)
    assert sorted(p.name for p in target.iterdir()) == ["bin", "conv_conformance", "conv_conformance-0.2.0.dist-info",
                                                        "flipper.py"]


def test_the_package_version_is_the_suite_version():
    from conv_conformance import __version__

    assert __version__ == spec.SUITE_VERSION == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "version"]


def test_the_installed_command_gives_a_verdict_a_record_and_a_reproduce_line_that_reproduces(installed, tmp_path):
    _, target, work = installed
    run = _run(installed, f"conv-conformance open {tmp_path} && "
               f"conv-conformance --backend=flipper:Flipped --device=cpu --results-dir={tmp_path}")
    out = run.stdout + run.stderr
    assert run.returncode == 1 and "verdict: Flipped: NOT CONFORMANT" in out, out[-3000:]
    assert f"from {target / 'conv_conformance' / 'suite'}" in out  # the installed tree ran, not the checkout
    # The record is of this suite and this spec: the report merges it with a checkout's records.
    record = json.loads((tmp_path / "Flipped.json").read_text())
    assert record["suite"] == {"version": spec.SUITE_VERSION, "spec_fingerprint": spec.fingerprint()}
    lines = [line.strip().removeprefix("reproduce: ") for line in out.splitlines() if "reproduce: " in line]
    assert lines and all(" conv-conformance 'tests/" in f" {line}" for line in lines), lines
    again = _run(installed, lines[0])
    said = again.stdout + again.stderr
    assert again.returncode == 1 and re.search(r"=+ 1 failed in [\d.]+s", said), said[-3000:]
    report = _run(installed, f"conv-conformance report {tmp_path} --expect Flipped")
    assert report.returncode == 1 and "NOT CONFORMANT" in report.stdout, report.stdout[-3000:] + report.stderr


def test_a_conformant_adapter_passes_through_the_installed_command(installed, tmp_path):
    run = _run(installed, f"conv-conformance --backend=numpy --device=cpu --results-dir={tmp_path} -q")
    assert run.returncode == 0 and "verdict: numpy: CONFORMANT" in run.stdout, (run.stdout + run.stderr)[-3000:]
    where = _run(installed, "conv-conformance where")
    assert where.returncode == 0 and where.stdout.startswith(f"conv-conformance {spec.SUITE_VERSION}:")


def test_the_example_adapter_ci_runs_the_documented_commands():
    """The example package's CI script, the example's workflow and tox's `example` env are one path:
    the workflow runs the script, tox runs the script, and the script is what docs/adapters.md shows."""
    example = ROOT / "examples" / "purepython-adapter"
    script = (example / "ci" / "conformance.sh").read_text()
    assert 'python -m pip install "$CONV_CONFORMANCE" .' in script and "conv-conformance --backend=purepython" in script
    assert "run: ci/conformance.sh" in (example / ".github" / "workflows" / "conformance.yml").read_text()
    assert "examples/purepython-adapter/ci/conformance.sh" in (ROOT / "tox.ini").read_text()
    docs = (ROOT / "docs" / "adapters.md").read_text()
    assert 'pip install "$CONV_CONFORMANCE" .' in docs and "conv-conformance --backend=" in docs
