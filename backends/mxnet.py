"""mxnet adapter (being written)."""

from __future__ import annotations

from backends.base import Backend


class MxnetBackend(Backend):
    name = "mxnet"
    module = "mxnet"
