"""`o2c bench`: the benchmark, a tool beside the service and outside its runtime path.

`run` drives a dev server and a worker process (`worker`, started by `env`) with
floor workflows and full orders, and `report` turns what it measured into the
table and JSON of docs/benchmark.md. The CLI imports it only when `o2c bench` runs.
"""
