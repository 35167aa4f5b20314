"""An out-of-tree adapter's package, as an author ships it: the adapter, its own fixed case and its own
known-deviation list (``Backend.cases``, ``Backend.known_deviations``), for tests/meta/test_adapter_path.py."""
