"""Adapters that run the conformance spec on one framework each.

``import backends`` needs only NumPy: every adapter imports its framework
lazily, so a broken install is reported for that backend alone.

Select an adapter by its registered name (``numpy``, ``torch``, ``jax``,
``tensorflow``, ``mxnet``, and the runners ``tfjs`` and ``jvm``), by a runner command
``runner:CMD,ARG,...`` (``docs/runners.md``) or, for an adapter that lives outside this
repository, by an import path ``package.module:ClassName`` or by the name of
an entry point that an installed package declares in the group
``conv_conformance.backends`` (see ``docs/adapters.md``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys

from backends import (  # noqa: F401  (registers them)
    jax,
    keras,
    mlx,
    mxnet,
    numpy,
    onnxruntime,
    paddle,
    runner,
    tensorflow,
    tinygrad,
    torch,
)
from backends.base import (
    DEVICES,
    DTYPES,
    REGISTRY,
    Backend,
    BackendUnavailable,
    Trajectory,
)

__all__ = [
    "DEVICES", "DTYPES", "REGISTRY", "Backend", "BackendUnavailable", "Trajectory",
    "ENTRY_POINT_GROUP", "builtin_names", "resolve",
]


#: Entry-point group through which installed packages offer adapters.
ENTRY_POINT_GROUP = "conv_conformance.backends"


def builtin_names() -> list[str]:
    """Names of the adapters shipped in this repository."""
    return sorted(REGISTRY)


def resolve(name: str) -> type[Backend]:
    """The adapter class for a ``--backend`` value.

    ``name`` is a registered name, an entry point of the group
    :data:`ENTRY_POINT_GROUP`, or ``module.path:ClassName``.  Raises
    ``LookupError`` naming the known backends when nothing matches.
    """
    if name.startswith("runner:"):  # any command that speaks docs/runners.md
        return runner.command_backend(name.removeprefix("runner:"))
    if ":" in name:
        return _load_class(name, name)
    if name in REGISTRY:
        return REGISTRY[name]
    offered = {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    if name in offered:
        return _load_class(offered[name].value, f"{name} (entry point {offered[name].value})")
    raise LookupError(
        f"unknown backend {name!r}; known backends: {', '.join(builtin_names() + sorted(offered))}, "
        "or an import path 'package.module:ClassName' (entry points of the group "
        f"{ENTRY_POINT_GROUP!r} searched in the packages installed for {sys.executable}: install the adapter's "
        "package, and the suite, into the interpreter that runs pytest)")


def _load_class(path: str, what: str) -> type[Backend]:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise LookupError(f"cannot load adapter {what!r}: an import path is 'package.module:ClassName'")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # an adapter module can raise anything at import
        raise LookupError(f"cannot load adapter {what!r}: {type(exc).__name__}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise LookupError(f"{what!r} is not a subclass of backends.Backend")
    return cls
