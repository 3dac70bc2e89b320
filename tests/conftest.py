pytest_plugins = ["tests.temporal_env"]
