pytest_plugins = [
    "tests.support.temporal_env",
    "tests.support.fixtures_db",
    "tests.support.stack",
    "tests.support.order_harness",
]
