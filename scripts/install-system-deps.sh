#!/usr/bin/env bash
# Install the Debian packages the test suite needs (Redis, PostgreSQL, Chromium, Prometheus)
# when missing; with --bench, only what the benchmarks need (wrk, the HTTP load generator).
# The tests start their own servers on free ports: package installs must not leave system
# services running (policy-rc.d refuses every service start meanwhile).
set -euo pipefail

missing=()
if [ "${1:-}" = "--bench" ]; then
    command -v wrk >/dev/null 2>&1 || missing+=(wrk)
else
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
    command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)
    else
        echo "install-system-deps: missing ${missing[*]} and not root; install them with apt" >&2
        exit 1
    fi
else
    SUDO=()
fi
echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy"
    trap '"${SUDO[@]}" rm -f "$policy"' EXIT
fi
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
