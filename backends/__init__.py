"""Adapters that run the conformance spec on one framework each.

``import backends`` needs only NumPy: every adapter imports its framework
lazily, so a broken install is reported for that backend alone.

Select an adapter by its registered name (``numpy``, ``torch``, ``jax``,
``tensorflow``, ``mxnet``) or, for an adapter that lives outside this
repository, by an import path ``package.module:ClassName``.
"""

from __future__ import annotations

import importlib

from backends import jax, mxnet, numpy, tensorflow, torch  # noqa: F401  (registers them)
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
    "builtin_names", "resolve",
]


def builtin_names() -> list[str]:
    """Names of the adapters shipped in this repository."""
    return sorted(REGISTRY)


def resolve(name: str) -> type[Backend]:
    """The adapter class for a ``--backend`` value.

    ``name`` is a registered name or ``module.path:ClassName``.  Raises
    ``LookupError`` naming the known backends when nothing matches.
    """
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise LookupError(f"cannot load adapter {name!r}: {type(exc).__name__}: {exc}") from exc
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            raise LookupError(f"{name!r} is not a subclass of backends.Backend")
        return cls
    try:
        return REGISTRY[name]
    except KeyError:
        raise LookupError(
            f"unknown backend {name!r}; known backends: {', '.join(builtin_names())}, "
            "or an import path 'package.module:ClassName'"
        ) from None
