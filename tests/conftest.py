"""Shared fixtures live in tests/fixtures/; each module owns one concern."""

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.apiserver",
    "tests.fixtures.docker",
]
