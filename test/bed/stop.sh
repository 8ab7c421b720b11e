#!/usr/bin/env bash
# Stop every process of the dms_stream test bed by its recorded PID: the
# proxies, s3rver, kinesalite, and PostgreSQL (pg_ctl -m fast as postgres).
# Safe to run any time, also after a start that failed halfway; leaves the
# bed dir (logs, data) in place. Usage: test/bed/stop.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/bed/env.sh
source "$here/env.sh"
# shellcheck source=test/bed/lib.sh
source "$here/lib.sh"
cd /

[[ -d $DMS_BED_DIR ]] || exit 0
rc=0

for name in s3-proxy kinesis-proxy s3rver kinesalite; do
    stop_pid "$name" || rc=1
done

# PostgreSQL: a fast shutdown through pg_ctl, then the PID as a fallback.
if [[ -f $DMS_BED_PGDATA/postmaster.pid ]]; then
    pid=$(head -n 1 "$DMS_BED_PGDATA/postmaster.pid" 2>/dev/null || true)
    if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid"; then
        if runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DMS_BED_PGDATA" -m fast -w -t 30 stop >/dev/null 2>&1; then
            echo "bed: stopped pg (pid $pid)"
        else
            echo "bed: pg_ctl stop failed, sending SIGQUIT/SIGKILL to pid $pid" >&2
            kill -QUIT "$pid" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
            alive "$pid" && kill -KILL "$pid" 2>/dev/null
            alive "$pid" && rc=1
        fi
    fi
fi
rm -f "$DMS_BED_DIR/run/pg.pid"
exit $rc
