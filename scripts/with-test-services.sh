#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL and Redis on free loopback ports.
# Exports CFD_TEST_DATABASE_URL and CFD_TEST_REDIS_URL; both servers are removed afterwards.
set -euo pipefail

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

workdir=$(mktemp -d /tmp/cfd-test-services.XXXXXX)
chmod 755 "$workdir"
pg_bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
pg_port=$(free_port)
redis_port=$(free_port)
pg_started=""
redis_pid=""

cleanup() {
    if [ -n "$pg_started" ]; then
        run_pg "$pg_bin/pg_ctl" -D "$workdir/pg" -m immediate stop >/dev/null 2>&1 || true
    fi
    if [ -n "$redis_pid" ]; then
        kill "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT

# PostgreSQL refuses to run as root.
run_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

mkdir -p "$workdir/pg"
[ "$(id -u)" -eq 0 ] && chown postgres "$workdir" "$workdir/pg"
run_pg "$pg_bin/initdb" -D "$workdir/pg" -A trust -U postgres >"$workdir/initdb.log" 2>&1 \
    || { cat "$workdir/initdb.log" >&2; exit 1; }
run_pg "$pg_bin/pg_ctl" -D "$workdir/pg" -l "$workdir/pg.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $workdir -c fsync=off -c max_connections=200" \
    start >/dev/null || { cat "$workdir/pg.log" >&2; exit 1; }
pg_started=1

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$workdir" >"$workdir/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 50); do
    if redis-cli -p "$redis_port" ping >/dev/null 2>&1; then break; fi
    sleep 0.1
done
redis-cli -p "$redis_port" ping >/dev/null || { cat "$workdir/redis.log" >&2; exit 1; }

export CFD_TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$pg_port/postgres"
export CFD_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
echo "test services: PostgreSQL on 127.0.0.1:$pg_port, Redis on 127.0.0.1:$redis_port"
set +e
"$@"
status=$?
set -e
exit $status
