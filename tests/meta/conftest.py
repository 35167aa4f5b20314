"""Fixtures shared by the harness's own tests."""

from __future__ import annotations

import pytest

from tests.meta.sealing import conformance, open_run


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """One complete numpy run in a matrix run: the record everything else is compared with."""
    folder = tmp_path_factory.mktemp("whole")
    open_run(folder)
    result = conformance("--backend=numpy", f"--results-dir={folder}")
    assert result.returncode == 0, result.stdout[-3000:]
    return folder
