#!/usr/bin/env bash
# Run the whole pytest suite; an empty collection (exit code 5) is a failure, not a pass.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest "$@"
status=$?
if [ $status -eq 5 ]; then
    echo "pytest collected no tests: failing, the suite must not be empty" >&2
    exit 1
fi
exit $status
