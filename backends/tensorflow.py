"""tensorflow adapter (being written)."""

from __future__ import annotations

from backends.base import Backend


class TensorflowBackend(Backend):
    name = "tensorflow"
    module = "tensorflow"
