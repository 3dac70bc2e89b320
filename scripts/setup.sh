# Sourced by scripts/dev and scripts/test: make .venv and install the project
# into it, again only when pyproject.toml has changed since the last install.
set -euo pipefail

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "o2c needs Python 3.11 or newer as '$python' (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "installing o2c and its dependencies into .venv ..." >&2
  sh scripts/install .venv/bin/python test
  rm -f .venv/.installed-*
  touch "$stamp"
fi
