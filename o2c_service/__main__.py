"""`python -m o2c_service` is the `o2c` command."""

from o2c_service.cli import main

main()
