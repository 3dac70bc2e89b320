"""The whole service as users run it: HTTP API, CLI, o2c dev, resilience, browser, benchmark."""
