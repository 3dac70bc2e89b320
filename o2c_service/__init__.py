"""The process edges: settings, Temporal client and worker, HTTP API, CLI, dev runner."""
