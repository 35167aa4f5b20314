"""jax adapter (being written)."""

from __future__ import annotations

from backends.base import Backend


class JaxBackend(Backend):
    name = "jax"
    module = "jax"
