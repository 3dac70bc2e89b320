pytest_plugins = ["tests.temporal_env", "tests.fixtures_db", "tests.stack", "tests.order_harness"]
