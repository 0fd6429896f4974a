"""Fixtures shared by the e2e tests: `up_cluster`, a real one-node `mkube up` cluster
(tests/e2e/cluster.py)."""

from tests.e2e.cluster import up_cluster  # noqa: F401  (a fixture: importing it here shares it)
