"""The GitHub Actions workflow (.github/workflows/conformance.yml) is tox's CPU matrix, job for job:
a framework added to one and not the other would be a matrix that CI never runs, or never compares."""

from __future__ import annotations

import configparser

import yaml

from tests.meta.test_broken_adapters import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "conformance.yml"


def _tox_cpu_label() -> list[str]:
    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini")
    labels = {key.strip(): value for key, value in (line.split("=", 1) for line in tox["tox"]["labels"].splitlines()
                                                    if "=" in line and not line.strip().startswith("#"))}
    return [env.strip() for env in labels["cpu"].split(",")]


def test_the_framework_jobs_are_the_tox_cpu_matrix():
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    cpu = _tox_cpu_label()
    assert cpu[0] == "open" and cpu[-1] == "report", cpu
    assert jobs["framework"]["strategy"]["matrix"]["env"] == cpu[1:-1]


def test_the_matrix_run_reaches_every_job_and_the_report_runs_whatever_happened():
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    assert jobs["framework"]["needs"] == "open" and jobs["report"]["needs"] == "framework"
    assert jobs["report"]["if"] == "always()"  # a failed framework job still gets its missing record named
    for job in ("framework", "report"):
        downloads = [s["with"] for s in jobs[job]["steps"] if s.get("uses", "").startswith("actions/download-artifact")]
        assert {"name": "matrix", "path": "results"} in downloads, job
    assert any("tox run -e report" in s.get("run", "") for s in jobs["report"]["steps"])
    assert any("GITHUB_STEP_SUMMARY" in s.get("run", "") for s in jobs["report"]["steps"])
    gpu = jobs["gpu"]
    # Off unless asked for; on the runner label given (default `gpu`).
    assert gpu["runs-on"] == ["self-hosted", "${{ inputs.gpu_label }}"] and "inputs.gpu" in gpu["if"]
    assert yaml.safe_load(WORKFLOW.read_text())[True]["workflow_dispatch"]["inputs"]["gpu_label"]["default"] == "gpu"


def test_the_cpu_matrix_lists_no_gpu_targets_and_the_gpu_env_demands_a_gpu():
    """A CPU-only matrix does not print hundreds of skipped GPU targets per env; the GPU env fails
    on a machine without a GPU instead of skipping (--device gpu)."""
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    assert "--device=cpu" in tox["testenv"]["commands"]
    assert "--device=gpu" in tox["testenv:gpu"]["commands"]


def test_the_report_expects_every_framework_env_of_the_cpu_matrix():
    """tox's [matrix] backends is what `open` expects and `report` merges: a framework env added to the
    `cpu` label but not there would run and never be compared (or be compared and never run)."""
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    expected = [name.strip() for name in tox["matrix"]["backends"].split(",")]
    assert expected == _tox_cpu_label()[1:-1]
    assert "{[matrix]backends}" in tox["testenv:open"]["commands"]
    assert "{[matrix]backends}" in tox["testenv:report"]["commands"]
    depends = [env.strip() for env in tox["testenv:report"]["depends"].replace("\n", ",").split(",") if env.strip()]
    assert depends == _tox_cpu_label()[:-1]
