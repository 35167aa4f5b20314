"""torch adapter (being written)."""

from __future__ import annotations

from backends.base import Backend


class TorchBackend(Backend):
    name = "torch"
    module = "torch"
