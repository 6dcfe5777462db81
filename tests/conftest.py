"""Fixtures for every test: the dev stack's servers (a RabbitMQ vhost, a PostgreSQL database,
index and container prefixes per run), the config store, the object stores, the sinks and the
jobs; each lives in tests/support/."""

pytest_plugins = [
    "tests.support.devstack",
    "tests.support.config_store",
    "tests.support.stores",
    "tests.support.sinks",
    "tests.support.jobs",
]
