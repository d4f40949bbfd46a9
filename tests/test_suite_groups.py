"""Under `make test` (two xdist workers, --dist loadgroup) a test travels in its group: the
node id the scheduler reads carries the group (tests/conftest.py), else every test travels
alone and a module's tests, or the demo's, split over both workers."""

from __future__ import annotations

import os

import pytest


def test_a_test_under_loadgroup_carries_its_group_in_its_node_id(request):
    if not request.config.getoption("loadgroup", False):
        pytest.skip("not an xdist worker under --dist loadgroup")
    assert os.environ.get("PYTEST_XDIST_WORKER")
    assert request.node.nodeid.endswith("@tests/test_suite_groups.py"), request.node.nodeid
