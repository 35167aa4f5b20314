"""A pytest plugin for the meta-tests: it changes the collection the way a
hostile or broken environment could, without any option that says so.

``CC_META_DROP=<substring>``: silently remove the first collected item whose
id contains it (no ``pytest_deselected``: a plugin or conftest that loses a
test).  Loaded with ``-p tests.meta.plugins``.
"""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    drop = os.environ.get("CC_META_DROP")
    if drop:
        for i, item in enumerate(items):
            if drop in item.nodeid:
                del items[i]
                break
