"""The support console: held orders, one order's story and the forms that act on it,
and the reports, in a browser (docs/console.md). `create_console` (in `app`) makes it;
the API mounts it at `/console`."""
