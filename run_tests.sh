#!/usr/bin/env bash
# Run the test suite, setting up the environment first when needed. Extra arguments go to pytest
# (e.g. `bash run_tests.sh -m "not slow"` or `bash run_tests.sh tests/unit/data`).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bash "$root/install.sh" --test
python_bin=$(cat "$root/.env_python")
cd "$root"
exec "$python_bin" -m pytest "$@"
