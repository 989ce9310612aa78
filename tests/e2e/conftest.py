from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    """One state folder for all end-to-end tests: the first start migrates the metadata
    database, later starts reuse it (as a second `make demo` does)."""
    base = tmp_path_factory.mktemp("runner")
    return {"state": base / "state", "logs": base / "logs", "data": base / "data", "base": base}
