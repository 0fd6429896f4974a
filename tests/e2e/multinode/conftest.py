"""Fixtures for multi-node e2e tests: three "VMs" (network namespaces, each with its own
Docker engine) on a host bridge; see harness.py for the API.

    multinode_cluster   session: a started ``Cluster`` (3 nodes, registry at
                        10.77.0.1:5000 with hello:1); stopped at the end of the session,
                        which fails loudly if anything is left behind.
    cluster             function: the same cluster; after the test, ``reset()`` kills the
                        processes the test started, brings cut links up, restarts stopped
                        engines and removes containers/networks/volumes/pulled images from
                        every node engine. On a failed test it prints the tail of the logs
                        of the processes the test started.

Every test under this directory gets the ``multinode`` marker (``-m multinode`` /
``-m "not multinode"``). Logs (dockerd per node, registry, processes) are kept in
pytest's temporary directory (``multinode-logs*``).
"""

from __future__ import annotations

import sys
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.e2e.multinode.harness import Cluster, ClusterError
from tests.fixtures.docker import MkubeImages

_HERE = Path(__file__).resolve().parent
_FAILED = pytest.StashKey[bool]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.multinode)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash[_FAILED] = True
    return report


@pytest.fixture(scope="session")
def multinode_cluster(mkube_images: MkubeImages, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The session's cluster (see module doc); fails every requesting test clearly when
    this machine cannot run it."""
    problems = Cluster.preflight()
    if problems:
        pytest.fail("multinode tests cannot run here: " + "; ".join(problems), pytrace=False)
    cluster = Cluster(log_dir=tmp_path_factory.mktemp("multinode-logs"))
    error: ClusterError | None = None
    try:
        cluster.start()
    except ClusterError as exc:
        error = exc
    if error is not None:
        pytest.fail(f"multinode cluster did not start: {error}", pytrace=False)
    try:
        yield cluster
    finally:
        left = cluster.stop()
        if left:
            raise ClusterError("multinode cluster teardown left: " + "; ".join(left))


@pytest.fixture
def cluster(multinode_cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The session cluster, reset after the test (see module doc)."""
    yield multinode_cluster
    if request.node.stash.get(_FAILED, False):
        for proc in multinode_cluster.processes:
            print(f"--- {proc!r}, log {proc.log_path} (last 30 lines):\n{proc.logs(tail=30)}", file=sys.stderr)
    problems = multinode_cluster.reset()
    if problems:
        pytest.fail("multinode cluster reset failed: " + "; ".join(problems), pytrace=False)
