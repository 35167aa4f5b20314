"""conv-conformance, installed: the command ``conv-conformance`` and where the suite's tree lies.

The suite itself is a tree of files run by pytest from its own folder (``conftest.py``, ``backends/``,
``spec/``, ``tests/``, ``report/``), as in a checkout. The wheel carries that tree inside this package
(``conv_conformance/suite/``), so that nothing but ``conv_conformance`` is installed into
site-packages: the tree's folders have generic names (``tests``, ``spec``) that would collide with
other projects' there. They become importable only inside a run of the suite (pytest puts the
tree's root on ``sys.path`` through its rootdir ``conftest.py``), which is also where an adapter's
``import backends.base`` resolves.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.2.0"

__all__ = ["__version__", "suite_root"]


def suite_root() -> Path:
    """The root of the suite's tree: ``conv_conformance/suite`` when installed from a wheel, the
    checkout itself when run from one (``python -m conv_conformance``)."""
    here = Path(__file__).resolve().parent
    installed = here / "suite"
    return installed if (installed / "conftest.py").is_file() else here.parent
