#!/usr/bin/env bash
# Start the dms_stream test bed on 127.0.0.1, each part only if it is not
# already running: a throwaway PostgreSQL 15 cluster (as user postgres),
# s3rver, kinesalite, and a SigV4-verifying fault proxy in front of each
# emulator. PIDs and logs live in $DMS_BED_DIR (default /tmp/dms_stream_bed).
#
# Usage: test/bed/start.sh [--fresh] [pg|s3rver|kinesalite|s3-proxy|kinesis-proxy ...]
#   --fresh   stop whatever runs from the bed dir and wipe it first
# Env:   DMS_BED_DIR, DMS_BED_PRELOAD (shared_preload_libraries, default
#        'dms_stream,pg_cron'), DMS_BED_PG_EXTRA_CONF (extra postgresql.conf lines)
# Exits non-zero (with the failing server's log tail) if anything fails to start.
# Run as root. See test/bed/env.sh for the ports and variables.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/bed/env.sh
source "$here/env.sh"
# shellcheck source=test/bed/lib.sh
source "$here/lib.sh"

fresh=0
parts=()
for arg in "$@"; do
    case $arg in
        --fresh) fresh=1 ;;
        pg | s3rver | kinesalite | s3-proxy | kinesis-proxy) parts+=("$arg") ;;
        -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "start.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done
((${#parts[@]})) || parts=(pg s3rver kinesalite s3-proxy kinesis-proxy)
cd /   # every path below is absolute; postgres cannot enter root's cwd

if [[ $(id -u) != 0 ]]; then
    echo "start.sh: run as root (PostgreSQL is started as postgres through runuser)" >&2
    exit 1
fi

if ((fresh)); then
    "$here/stop.sh" >/dev/null || true
    wipe_bed_dir
fi

# The bed dir and its parents must be traversable by postgres.
mkdir -p "$DMS_BED_DIR"/{run,logs,aws} "$S3RVER_DIR"
d=$DMS_BED_DIR
while [[ $d != / && $d != . ]]; do chmod a+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
chmod 755 "$DMS_BED_DIR"
LOGS=$DMS_BED_DIR/logs

# AWS CLI files of the bed, so that the host's ~/.aws is never read.
cat >"$AWS_CONFIG_FILE" <<EOF
[default]
region = us-east-1
output = json
cli_pager =

[profile alt]
region = us-east-1
output = json
cli_pager =
EOF
cat >"$AWS_SHARED_CREDENTIALS_FILE" <<EOF
[default]
aws_access_key_id = $AWS_ACCESS_KEY_ID
aws_secret_access_key = $AWS_SECRET_ACCESS_KEY

[alt]
aws_access_key_id = $DMS_BED_ALT_ACCESS_KEY_ID
aws_secret_access_key = $DMS_BED_ALT_SECRET_ACCESS_KEY
EOF
chmod 600 "$AWS_SHARED_CREDENTIALS_FILE"

node_modules_check() {
    if [[ ! -d $DMS_ROOT/node_modules/s3rver || ! -d $DMS_ROOT/node_modules/kinesalite ]]; then
        echo "start.sh: $DMS_ROOT/node_modules is missing s3rver/kinesalite: run test/setup.sh (npm ci)" >&2
        exit 1
    fi
}

# port_free NAME PORT: fail if a foreign process already holds the port
port_free() {
    if port_open "$2"; then
        echo "start.sh: port $2 for $1 is already in use by another process:" >&2
        ss -ltnp "sport = :$2" >&2 || true
        exit 1
    fi
}

# start_bg NAME MARKER LOG CMD...: start CMD in the background, record its PID
start_bg() {
    local name=$1 marker=$2 log=$3
    shift 3
    "$@" </dev/null >>"$log" 2>&1 &
    echo "$! $marker" >"$DMS_BED_DIR/run/$name.pid"
    echo "$!"
}

start_pg() {
    local pgctl="$PGBIN/pg_ctl" conf
    if [[ -f $DMS_BED_PGDATA/postmaster.pid ]] &&
        runuser -u postgres -- "$pgctl" -D "$DMS_BED_PGDATA" status >/dev/null 2>&1; then
        echo "bed: pg already running (port $PGPORT)"
        return 0
    fi
    port_free pg "$PGPORT"
    install -d -o postgres -g postgres -m 755 "$DMS_BED_PGRUN"
    if [[ ! -f $DMS_BED_PGDATA/PG_VERSION ]]; then
        rm -rf "$DMS_BED_PGDATA"
        install -d -o postgres -g postgres -m 700 "$DMS_BED_PGDATA"
        if ! runuser -u postgres -- "$PGBIN/initdb" -D "$DMS_BED_PGDATA" -U postgres --auth=trust \
            -E UTF8 --locale=C.UTF-8 >"$LOGS/initdb.log" 2>&1; then
            echo "bed: initdb failed" >&2
            log_tail "$LOGS/initdb.log"
            return 1
        fi
        echo "include 'dms_bed.conf'" >>"$DMS_BED_PGDATA/postgresql.conf"
    fi
    # Regenerated at every start, so DMS_BED_PRELOAD and friends take effect.
    conf="$DMS_BED_PGDATA/dms_bed.conf"
    cat >"$conf" <<EOF
# written by test/bed/start.sh at every start
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$DMS_BED_PGRUN'
shared_preload_libraries = '$DMS_BED_PRELOAD'
cron.database_name = 'postgres'
dms_stream.database = 'postgres'
wal_level = logical
max_replication_slots = 16
max_wal_senders = 16
max_worker_processes = 32
output_plugin_libraries = 'pgoutput, test_decoding, wal2json, dms_stream'
fsync = off
synchronous_commit = off
full_page_writes = off
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
timezone = 'UTC'
EOF
    if [[ -n ${DMS_BED_PG_EXTRA_CONF:-} ]]; then
        printf '%s\n' "$DMS_BED_PG_EXTRA_CONF" >>"$conf"
    fi
    chown postgres:postgres "$conf"
    local log="$DMS_BED_PGRUN/pg.log"
    # The bed's ports lie in the kernel's ephemeral range: a passing client
    # socket can hold one for a moment, so a refused bind is retried.
    local attempt
    for attempt in 1 2 3 4 5; do
        if runuser -u postgres -- "$pgctl" -D "$DMS_BED_PGDATA" -l "$log" -w -t 60 start >"$LOGS/pg_ctl.log" 2>&1; then
            break
        fi
        tail -n 20 "$log" 2>/dev/null | grep -q 'could not bind .*Address already in use' || break
        echo "bed: port $PGPORT busy (attempt $attempt), retrying" >&2
        sleep 2
    done
    if ! runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DMS_BED_PGDATA" status >/dev/null 2>&1; then
        echo "bed: PostgreSQL failed to start" >&2
        log_tail "$LOGS/pg_ctl.log" 10
        log_tail "$log"
        return 1
    fi
    local pid
    pid=$(head -n 1 "$DMS_BED_PGDATA/postmaster.pid")
    echo "$pid postgres" >"$DMS_BED_DIR/run/pg.pid"
    wait_port pg "$PGPORT" "$pid" "$log" 30
    echo "bed: pg started (pid $pid, port $PGPORT, preload '$DMS_BED_PRELOAD')"
}

start_s3rver() {
    local pid log="$LOGS/s3rver.log"
    if pid=$(bed_pid s3rver); then echo "bed: s3rver already running (pid $pid)"; return 0; fi
    node_modules_check
    port_free s3rver "$DMS_BED_S3RVER_PORT"
    pid=$(start_bg s3rver s3rver.js "$log" node --openssl-legacy-provider \
        "$DMS_ROOT/node_modules/s3rver/bin/s3rver.js" -d "$S3RVER_DIR" -a 127.0.0.1 \
        -p "$DMS_BED_S3RVER_PORT" --silent)
    wait_port s3rver "$DMS_BED_S3RVER_PORT" "$pid" "$log"
    echo "bed: s3rver started (pid $pid, $S3RVER_URL, dir $S3RVER_DIR)"
}

start_kinesalite() {
    local pid log="$LOGS/kinesalite.log"
    if pid=$(bed_pid kinesalite); then echo "bed: kinesalite already running (pid $pid)"; return 0; fi
    node_modules_check
    port_free kinesalite "$DMS_BED_KINESALITE_PORT"
    pid=$(start_bg kinesalite kinesalite-lo.cjs "$log" node "$here/kinesalite-lo.cjs" "$DMS_BED_KINESALITE_PORT")
    wait_port kinesalite "$DMS_BED_KINESALITE_PORT" "$pid" "$log"
    echo "bed: kinesalite started (pid $pid, $KINESALITE_URL)"
}

# start_proxy NAME SERVICE PORT UPSTREAM [ARGS...]
start_proxy() {
    local name=$1 service=$2 port=$3 upstream=$4 pid log="$LOGS/$1.log"
    shift 4
    if pid=$(bed_pid "$name"); then echo "bed: $name already running (pid $pid)"; return 0; fi
    port_free "$name" "$port"
    pid=$(start_bg "$name" "--service $service" "$log" "$DMS_BED_PYTHON" -u "$DMS_ROOT/test/proxy/sigv4_proxy.py" \
        --service "$service" --listen "127.0.0.1:$port" --upstream "$upstream" --log "$log" "$@")
    wait_port "$name" "$port" "$pid" "$log"
    echo "bed: $name started (pid $pid, http://127.0.0.1:$port -> $upstream)"
}

for part in "${parts[@]}"; do
    case $part in
        pg) start_pg ;;
        s3rver) start_s3rver ;;
        kinesalite) start_kinesalite ;;
        s3-proxy) start_proxy s3-proxy s3 "$DMS_BED_S3_PROXY_PORT" "$S3RVER_URL" --upstream-access-key S3RVER ;;
        kinesis-proxy) start_proxy kinesis-proxy kinesis "$DMS_BED_KINESIS_PROXY_PORT" "$KINESALITE_URL" ;;
    esac
done
