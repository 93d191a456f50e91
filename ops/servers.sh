# ops/servers.sh: start and stop throw-away Redis and Postgres servers from Debian packages.
# Sourced by ops/test, ops/run and ops/bench; not meant to be run directly.
#
#   start_redis DIR PORT [redis-server options...]   -> redis on 127.0.0.1:PORT, data in DIR
#   start_postgres DIR PORT [fsync on|off]            -> postgres on 127.0.0.1:PORT, data in DIR,
#        superuser postgres / password choreo, database choreo, role choreo (createrole) / choreo;
#        CHOREO_POSTGRES_OPTIONS adds server options (-c shared_preload_libraries=pg_stat_statements)
#   start_redis_cluster DIR [REPLICAS]                -> a Redis Cluster of 3 masters with REPLICAS
#        replicas each (default 1; 0 is the benchmarks' routing-only baseline) on free loopback
#        ports (10000-22000, bus +10000), data in DIR/node-PORT, each node restartable with DIR/node-PORT/start; sets CHOREO_CLUSTER_PORTS (space-separated)
#   stop_servers                                      -> stops everything started above

CHOREO_STARTED_REDIS=()
CHOREO_STARTED_POSTGRES=()

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

postgres_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dir" ] || { echo "postgresql is not installed (run ops/setup)" >&2; return 1; }
    echo "$dir"
}

# Runs a command as the postgres user when we are root (initdb and pg_ctl refuse root).
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_redis() {
    local dir=$1 port=$2
    shift 2
    mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize yes \
        --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save "" "$@" >/dev/null
    local i
    for i in $(seq 1 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && { CHOREO_STARTED_REDIS+=("$dir"); return 0; }
        sleep 0.1
    done
    echo "redis did not start on port $port; log:" >&2
    tail -n 20 "$dir/redis.log" >&2
    return 1
}

# A free port in 10000-22000 whose cluster bus port (+10000) is free too: both outside the
# kernel's ephemeral range, so a restarted node gets its port back.
free_cluster_port() {
    python3 - "$@" <<'PY'
import random, socket, sys
taken = set(int(p) for p in sys.argv[1:])
for _ in range(1000):
    port = random.randint(10000, 22000)
    if port in taken:
        continue
    try:
        for p in (port, port + 10000):
            s = socket.socket(); s.bind(("127.0.0.1", p)); s.close()
    except OSError:
        continue
    print(port)
    break
PY
}

start_redis_cluster() {
    local dir=$1 replicas=${2:-1} port node i nodes
    nodes=$((3 * (replicas + 1)))
    CHOREO_CLUSTER_PORTS=""
    for i in $(seq 1 "$nodes"); do
        # shellcheck disable=SC2086
        port=$(free_cluster_port $CHOREO_CLUSTER_PORTS)
        node="$dir/node-$port"
        mkdir -p "$node"
        cat >"$node/start" <<START
#!/bin/sh
exec redis-server --port $port --bind 127.0.0.1 --dir "$node" --cluster-enabled yes \
    --cluster-config-file nodes.conf --cluster-node-timeout 2000 --save "" --appendonly no \
    --daemonize yes --pidfile "$node/redis.pid" --logfile "$node/redis.log"
START
        chmod +x "$node/start"
        "$node/start" >/dev/null
        CHOREO_CLUSTER_PORTS="$CHOREO_CLUSTER_PORTS $port"
        CHOREO_STARTED_REDIS+=("$node")
    done
    CHOREO_CLUSTER_PORTS=${CHOREO_CLUSTER_PORTS# }
    for port in $CHOREO_CLUSTER_PORTS; do
        for i in $(seq 1 100); do
            redis-cli -p "$port" ping >/dev/null 2>&1 && break
            sleep 0.1
        done
    done
    local addresses=()
    for port in $CHOREO_CLUSTER_PORTS; do addresses+=("127.0.0.1:$port"); done
    redis-cli --cluster create "${addresses[@]}" --cluster-replicas "$replicas" --cluster-yes >"$dir/create.log" 2>&1 || {
        echo "redis-cli --cluster create failed:" >&2; tail -n 20 "$dir/create.log" >&2; return 1; }
    # Every node must see the whole cluster (state ok, every node known) before it is used.
    local ready
    for i in $(seq 1 200); do
        ready=1
        for port in $CHOREO_CLUSTER_PORTS; do
            redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || ready=0
            [ "$(redis-cli -p "$port" cluster nodes 2>/dev/null | wc -l)" -eq "$nodes" ] || ready=0
        done
        [ "$ready" -eq 1 ] && return 0
        sleep 0.1
    done
    echo "the Redis Cluster did not become ready; log:" >&2
    tail -n 20 "$dir/create.log" >&2
    return 1
}

start_postgres() {
    local dir=$1 port=$2 fsync=${3:-on} bin
    bin=$(postgres_bin) || return 1
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        chmod 755 "$dir" "$(dirname "$dir")"
        chown postgres:postgres "$dir"
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        echo choreo > "$dir/pwfile"
        [ "$(id -u)" -eq 0 ] && chown postgres "$dir/pwfile"
        as_postgres "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" -E UTF8 --locale=C.UTF-8 \
            --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 || {
            echo "initdb failed:" >&2; tail -n 20 "$dir/initdb.log" >&2; return 1; }
        rm -f "$dir/pwfile"
    fi
    mkdir -p "$dir/socket"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir/socket"
    as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
        -o "-p $port -k $dir/socket -c listen_addresses=127.0.0.1 -c fsync=$fsync -c max_connections=500 -c shared_buffers=256MB ${CHOREO_POSTGRES_OPTIONS:-}" \
        start >/dev/null || { echo "postgres did not start; log:" >&2; tail -n 20 "$dir/postgres.log" >&2; return 1; }
    CHOREO_STARTED_POSTGRES+=("$dir")
    # An application database and a login role that may create per-service roles and schemas.
    as_postgres psql -h "$dir/socket" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt >/dev/null <<SQL
SELECT 'CREATE ROLE choreo LOGIN CREATEROLE PASSWORD ''choreo'''
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'choreo') \gexec
SELECT 'CREATE DATABASE choreo OWNER choreo'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'choreo') \gexec
SQL
}

stop_servers() {
    local dir bin
    for dir in "${CHOREO_STARTED_REDIS[@]}"; do
        [ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
    done
    bin=$(postgres_bin 2>/dev/null) || true
    for dir in "${CHOREO_STARTED_POSTGRES[@]}"; do
        as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    done
    CHOREO_STARTED_REDIS=()
    CHOREO_STARTED_POSTGRES=()
}
