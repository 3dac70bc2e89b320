"""`o2c`: run the service, and work orders as support staff.

`dev`, `worker`, `api` and `codec-server` run processes (`codec-key` makes a codec
key); `keys ...` manages the API's keys in its database. `orders ...` talks to the HTTP API
(so the CLI sees exactly what integrations see): tables for people, `-o json`
for scripts, a plain message and a non-zero exit on errors. One module per
group of commands; importing them registers the commands, in the order `--help`
lists them.
"""

from o2c_service.cli import processes, codec, orders, events, report, credits, keys, webhooks  # noqa: I001
from o2c_service.cli import reconcile
from o2c_service.cli.common import app

__all__ = ["app", "codec", "credits", "events", "keys", "main"]
__all__ += ["orders", "processes", "reconcile", "report", "webhooks"]


def main() -> None:
    app()
