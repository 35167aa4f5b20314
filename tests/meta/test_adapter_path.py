"""The adapter author's path: the documented minimal adapter gets a true verdict from the plain
command, with no false unexpected pass, every manifest probe's conclusion shown, and none of the
harness's own tests in the run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from tests.meta.test_broken_adapters import ROOT


def _plain(backend: str, *extra: str, pythonpath: str = "") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONV_CONFORMANCE_")}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run([sys.executable, "-m", "pytest", f"--backend={backend}", "-p", "no:cacheprovider", "-q",
                           *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_the_docs_show_the_minimal_adapter_as_it_is():
    docs = (ROOT / "docs" / "adapters.md").read_text()
    block = re.search(r"## The minimal adapter.*?```python\n(.*?)```", docs, re.S)
    assert block and block[1] == (ROOT / "examples" / "minimal_adapter.py").read_text()


def test_the_minimal_adapter_gets_a_true_verdict_from_the_plain_command(tmp_path):
    result = _plain("minimal_adapter:MinimalBackend", f"--results-dir={tmp_path}",
                    pythonpath=str(ROOT / "examples"))
    out = result.stdout
    assert result.returncode == 0 and "verdict: MinimalBackend: CONFORMANT" in out, out[-3000:]
    assert "tests/meta" not in out and "test_broken_adapters" not in out  # the plain command tests the adapter
    # No verb it lacks is called conforming; the probes use corr2d, which it has, and say what they found.
    assert not re.search(r"unexpected pass: MinimalBackend\.\w+ is not in the manifest", out), out[-3000:]
    assert ("unexpected pass: MinimalBackend-cpu-float16: float16 on cpu is not in the manifest (dtypes), "
            "but corr2d") in out
    assert "manifest probe: MinimalBackend-cpu-bfloat16: bfloat16 on cpu confirmed unsupported (tried with corr2d" \
        in out
    probes = [r for r in json.loads((tmp_path / "MinimalBackend.json").read_text())["results"] if r["probe"]]
    assert {r["dtype"] for r in probes} == {"float16", "bfloat16"} and all(r["probe_result"] or r["unexpected"]
                                                                          for r in probes)


def test_a_probe_whose_verb_is_missing_says_it_is_inconclusive():
    result = _plain("tests.meta.hostile:ImplementsNothing", "--device=cpu")
    assert "manifest probe: ImplementsNothing-cpu-float16: inconclusive: conv2d could not be tried" in result.stdout
    assert "ImplementsNothing-cpu-float16: float16 on cpu confirmed unsupported" not in result.stdout


BUGGY = '''
import numpy as np

from minimal_adapter import MinimalBackend


class Float32Only(MinimalBackend):
    """corr2d computes in float32 whatever it is given (d2l's corr2d on torch.float32)."""

    def corr2d(self, X, K):
        return super().corr2d(X.astype(np.float32), K.astype(np.float32))
'''


def test_failures_are_grouped_by_cause_each_with_one_line_that_reproduces_it(tmp_path):
    (tmp_path / "buggy_adapter.py").write_text(BUGGY)
    lists = tmp_path / "lists"
    lists.mkdir()
    listed = "tests/test_edge_detection.py::test_edge_detection[Float32Only-cpu-float64-edge_6x8-corr2d]"
    (lists / "Float32Only.txt").write_text("xfail: accepted while we port corr2d\nupstream: https://example.org/7\n"
                                           f"{listed}\n")
    result = _plain("buggy_adapter:Float32Only", f"--xfails={lists}",
                    pythonpath=f"{tmp_path}{os.pathsep}{ROOT / 'examples'}")
    out = result.stdout
    assert result.returncode == 1 and "verdict: Float32Only: NOT CONFORMANT" in out, out[-3000:]
    causes = re.findall(r"^ +(\d+) × (corr2d: the result is float32, but the inputs were float64.*)$", out, re.M)
    assert len(causes) == 1 and int(causes[0][0]) > 20, out[-3000:]  # one cause, many failures
    reproduce = re.findall(r"reproduce: (.*)$", out, re.M)
    assert len(reproduce) == len(re.findall(r"^ +\d+ × ", out, re.M)) - 1  # one per cause (the xfail is listed)
    assert all(r.startswith(f"PYTHONPATH={tmp_path} pytest 'tests/") and r.endswith(f"--xfails={lists}")
               for r in reproduce), reproduce
    assert f"known deviations: 1 (lists read: {lists / 'Float32Only.txt'})" in out
    assert "accepted while we port corr2d [https://example.org/7]" in out


def test_the_kernel_larger_message_says_the_rule_and_why():
    result = _plain("tests.meta.broken:EmptyForLargeKernel", "--device=cpu", "-k", "kernel_larger_2x2_k3x3",
                    "--tb=line")
    assert "has no valid position, but the adapter returned an array of shape (0, 0)" in result.stdout
    assert "(nh-kh+1) x (nw-kw+1)" in result.stdout and "call backends.base.output_shape" in result.stdout


def test_a_verbs_exception_is_one_line_with_the_traceback_behind_v():
    quiet = _plain("tests.meta.broken:RaisesOnUse", "--device=cpu", "-k", "fig_7_2_1 and float64", "--tb=short")
    line = "RaisesOnUse.conv2d raised RuntimeError: simulated crash inside the framework's conv op"
    assert line in quiet.stdout and 'raise RuntimeError("simulated crash' not in quiet.stdout, quiet.stdout[-3000:]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONV_CONFORMANCE_")}
    loud = subprocess.run([sys.executable, "-m", "pytest", "--backend=tests.meta.broken:RaisesOnUse", "--device=cpu",
                           "-p", "no:cacheprovider", "-v", "-k", "fig_7_2_1 and float64", "--tb=short"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert 'raise RuntimeError("simulated crash' in loud.stdout, loud.stdout[-3000:]


def test_a_known_deviation_list_starts_from_a_run_and_counts_only_once_filled_in(tmp_path):
    (tmp_path / "buggy_adapter.py").write_text(BUGGY)
    path = f"{tmp_path}{os.pathsep}{ROOT / 'examples'}"
    draft = tmp_path / "draft"
    first = _plain("buggy_adapter:Float32Only", f"--xfails-draft={draft}", pythonpath=path)
    listed = draft / "Float32Only.txt"
    assert first.returncode == 1 and f"draft known-deviation list written: {listed}" in first.stdout
    text = listed.read_text()
    assert text.count("xfail: <why this deviation is accepted>") == 1  # one cause, one block
    # The chapter-verb property fails too, but a property is never a known deviation: named in a comment only.
    assert "# Not listable: failures of generated properties" in text
    assert "#   tests/test_generated.py::test_generated_corr2d_matches_the_oracle[Float32Only-cpu-float64]" in text
    assert not re.search(r"^tests/test_generated\.py", text, re.M), text
    unfilled = _plain("buggy_adapter:Float32Only", f"--xfails={draft}", pythonpath=path)
    assert unfilled.returncode == 4 and "is still the draft's placeholder" in unfilled.stderr
    listed.write_text(text.replace("<why this deviation is accepted>", "corr2d computes in float32")
                      .replace("<link to the upstream report>", "https://example.org/2"))
    filled = _plain("buggy_adapter:Float32Only", f"--xfails={draft}", pythonpath=path)
    assert filled.returncode == 0, filled.stdout[-3000:]
    assert re.search(r"verdict: Float32Only: CONFORMANT with \d+ known deviations", filled.stdout)


def test_an_adapter_of_2d_arrays_only_gets_its_verdict_without_the_general_verbs(tmp_path):
    """The example package holds 1-D and 2-D arrays only and leaves the general convolution, pooling
    and the transposed convolution out of its manifest: those checks skip as not implemented (its
    asarray is never a failure for a verb it does not declare), and the verdict stands."""
    result = _plain("purepython_adapter:PurePythonBackend", "--device=cpu", f"--results-dir={tmp_path}", "-rs",
                    pythonpath=str(ROOT / "examples" / "purepython-adapter" / "src"))
    out = result.stdout
    assert result.returncode == 0 and "verdict: purepython: CONFORMANT" in out, out[-3000:]
    assert ("not implemented by the adapter: purepython.conv_general (the manifest agrees; its asarray does not "
            "take the 4-D inputs") in out
