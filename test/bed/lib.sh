# Shell helpers shared by start.sh and stop.sh of the dms_stream test bed
# (process bookkeeping by PID file, port polling, log tails). Sourced, not run.
# shellcheck shell=bash

# alive PID: true if the process exists and is not a zombie (PID 1 here may
# not reap orphans quickly, and kill -0 succeeds on zombies).
alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ $state != Z && $state != X ]]
}

# bed_pid NAME: print the recorded PID of component NAME if that process is
# still ours (alive and its command line contains the recorded marker).
bed_pid() {
    local name=$1 pidfile="$DMS_BED_DIR/run/$1.pid" pid marker
    [[ -f $pidfile ]] || return 1
    read -r pid marker <"$pidfile" || true
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    alive "$pid" || return 1
    if [[ -n ${marker:-} ]] && ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker"; then
        return 1      # PID reused by something else
    fi
    echo "$pid"
}

# port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# log_tail FILE [N]: print the last N lines of a log, indented, if it exists
log_tail() {
    local file=$1 n=${2:-40}
    if [[ -s $file ]]; then
        echo "---- last $n lines of $file ----" >&2
        tail -n "$n" "$file" | sed 's/^/  | /' >&2
        echo "----" >&2
    fi
}

# wait_port NAME PORT PID LOG [SECONDS]: wait until PORT accepts, failing
# early if PID dies. Prints the log tail on failure.
wait_port() {
    local name=$1 port=$2 pid=$3 log=$4 limit=${5:-30} i
    for ((i = 0; i < limit * 10; i++)); do
        if port_open "$port"; then return 0; fi
        if ! alive "$pid"; then
            echo "bed: $name (pid $pid) exited before listening on port $port" >&2
            log_tail "$log"
            return 1
        fi
        sleep 0.1
    done
    echo "bed: $name (pid $pid) did not listen on port $port within ${limit}s" >&2
    log_tail "$log"
    return 1
}

# stop_pid NAME: TERM the recorded process of NAME, KILL it after 5 s.
stop_pid() {
    local name=$1 pid i
    if pid=$(bed_pid "$name"); then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            echo "bed: $name (pid $pid) ignored SIGTERM, killing" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "bed: stopped $name (pid $pid)"
    fi
    rm -f "$DMS_BED_DIR/run/$name.pid"
}

# wipe_bed_dir: delete $DMS_BED_DIR, refusing anything that does not look
# like a bed dir (a typo in DMS_BED_DIR must not wipe a real directory).
wipe_bed_dir() {
    case $DMS_BED_DIR in
        / | /tmp | /root | /home | /var | "$DMS_ROOT" | "")
            echo "bed: refusing to wipe DMS_BED_DIR=$DMS_BED_DIR" >&2
            return 1 ;;
    esac
    if [[ -d $DMS_BED_DIR && -n $(ls -A "$DMS_BED_DIR") && ! -d $DMS_BED_DIR/run && ! -d $DMS_BED_DIR/logs ]]; then
        echo "bed: refusing to wipe $DMS_BED_DIR: not empty and not a test bed dir (no run/ or logs/)" >&2
        return 1
    fi
    rm -rf -- "$DMS_BED_DIR"
}
