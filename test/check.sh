#!/usr/bin/env bash
# The dms_stream test command (CI runs it through .ci/run). As root:
#   1. setup     test/setup.sh: apt packages + npm ci (skipped with SKIP_INSTALL=1)
#   2. build     make clean && make WERROR=-Werror && make install
#   3. bed       test/bed/start.sh (PostgreSQL, s3rver, kinesalite, SigV4 proxies),
#                stopped again at the end whatever happens
#   4. regress   pg_regress through make installcheck (one test per sql/ test)
#   5. unit      test/unit/run.sh, if present (its "N passed, N failed" line)
#   6. node      node --test over test/integration/*.test.mjs
#   7. shell     test/integration/*.sh, each one test (exit 0 = pass)
# and prints, as its very last line, "N passed, N failed" summed over all
# phases. A failed setup, build or bed start counts as one failure. Exits
# non-zero if anything failed. Logs go to $DMS_BED_DIR/logs.
#
# Usage: test/check.sh [--only WHAT]... [--keep]
#   --only regress|unit|node|shell|NAME   run only that phase, or only the
#          integration tests whose file name contains NAME (e.g. --only proxy)
#   --keep leave the bed running afterwards (stop it with test/bed/stop.sh)
# Env: SKIP_INSTALL=1 skips setup; DMS_BED_DIR (default /tmp/dms_stream_bed);
#      DMS_PG_PREFIX=DIR installs into a private copy of the server (test/bed/env.sh).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

only=()
keep=0
while (($#)); do
    case $1 in
        --only) [[ $# -ge 2 ]] || { echo "check.sh: --only needs an argument" >&2; exit 2; }
                only+=("$2"); shift 2 ;;
        --only=*) only+=("${1#--only=}"); shift ;;
        --keep) keep=1; shift ;;
        -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "check.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [[ $(id -u) != 0 ]]; then
    echo "check.sh: run as root (apt-get, make install, runuser postgres)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

# shellcheck source=test/bed/env.sh
source test/bed/env.sh
# shellcheck source=test/bed/lib.sh
source test/bed/lib.sh
LOGS=$DMS_BED_DIR/logs
passed=0
failed=0
failures=()
t_start=$SECONDS

banner() { printf '\n==== %s ====\n' "$*"; }
pass() { passed=$((passed + ${2:-1})); }
fail() { failed=$((failed + ${2:-1})); failures+=("$1"); }
tail_log() {
    local file=$1 n=${2:-60}
    echo "---- last $n lines of $file ----"
    tail -n "$n" "$file" | sed 's/^/  | /'
    echo "----"
}

# phase_selected PHASE: is a whole phase selected by --only (none = all)?
phase_selected() {
    local w
    ((${#only[@]})) || return 0
    for w in "${only[@]}"; do [[ $w == "$1" ]] && return 0; done
    return 1
}
# test_selected FILE PHASE: is this integration test file selected?
test_selected() {
    local w base
    ((${#only[@]})) || return 0
    base=$(basename "$1")
    for w in "${only[@]}"; do
        [[ $w == "$2" || $w == integration ]] && return 0
        [[ $w != regress && $w != unit && $base == *"$w"* ]] && return 0
    done
    return 1
}

bed_started=0
stop_bed() {
    if ((bed_started)) && ((!keep)); then
        bash test/bed/stop.sh >>"$LOGS/stop.log" 2>&1 || echo "check.sh: test/bed/stop.sh failed, see $LOGS/stop.log"
        bed_started=0
    fi
}
trap stop_bed EXIT
trap 'echo "check.sh: interrupted"; exit 130' INT TERM

finish() {
    stop_bed
    trap - EXIT
    banner "summary ($((SECONDS - t_start)) s, logs in $LOGS)"
    if ((${#failures[@]})); then
        printf 'failed: %s\n' "${failures[@]}"
    fi
    ((keep && bed_started)) && echo "bed left running (--keep): stop it with test/bed/stop.sh"
    echo "$passed passed, $failed failed"
    if ((failed)); then exit 1; fi
    exit 0
}

# Stop a bed left over by an earlier run before anything else: the apt
# install below may replace the PostgreSQL binaries under a running server.
bash test/bed/stop.sh >/dev/null 2>&1 || true
if ! wipe_bed_dir; then
    echo "0 passed, 1 failed"
    exit 1
fi
mkdir -p "$LOGS"

# ---------------------------------------------------------------- 1. setup
banner "setup (apt + npm ci)"
t=$SECONDS
if [[ ${SKIP_INSTALL:-0} == 1 ]]; then
    echo "skipped (SKIP_INSTALL=1)"
elif bash test/setup.sh >"$LOGS/setup.log" 2>&1; then
    echo "ok ($((SECONDS - t)) s, log $LOGS/setup.log)"
else
    tail_log "$LOGS/setup.log"
    fail setup
    finish
fi

# ---------------------------------------------------------------- 2. build
# install_extension: make install, into the private server copy when
# DMS_PG_PREFIX is set (the copy is made the first time).
install_extension() {
    if [[ -z $DMS_PG_PREFIX ]]; then
        make install
        return
    fi
    if [[ ! -x $PGBIN/postgres ]]; then
        mkdir -p "$DMS_PG_PREFIX/usr/lib/postgresql" "$DMS_PG_PREFIX/usr/share/postgresql"
        cp -a /usr/lib/postgresql/15 "$DMS_PG_PREFIX/usr/lib/postgresql/"
        cp -a /usr/share/postgresql/15 "$DMS_PG_PREFIX/usr/share/postgresql/"
    fi
    make install DESTDIR="$DMS_PG_PREFIX"
}

banner "build (make clean && make WERROR=-Werror && make install)"
t=$SECONDS
if { make clean && make -j2 WERROR=-Werror && install_extension; } >"$LOGS/build.log" 2>&1; then
    grep -E 'warning:' "$LOGS/build.log" | head -n 40 || true
    echo "ok ($((SECONDS - t)) s, log $LOGS/build.log)"
else
    # compiler and linker diagnostics only (command lines contain -Werror)
    grep -E '(error|warning):|undefined reference|cannot find' "$LOGS/build.log" | head -n 40 || true
    tail_log "$LOGS/build.log" 15
    fail build
    finish
fi

# ---------------------------------------------------------------- 3. bed
banner "bed (PostgreSQL :$PGPORT, s3rver, kinesalite, SigV4 proxies)"
t=$SECONDS
bed_started=1
if bash test/bed/start.sh >"$LOGS/bed.log" 2>&1; then
    sed 's/^/  /' "$LOGS/bed.log"
    echo "ok ($((SECONDS - t)) s)"
else
    cat "$LOGS/bed.log"
    fail bed
    finish
fi

# ---------------------------------------------------------------- 4. regress
selected_any=0   # did --only select anything (a phase or a test file)?
if phase_selected regress; then
    selected_any=1
    banner "regress (pg_regress via make installcheck)"
    t=$SECONDS
    # The Makefile computes REGRESS; ask make for it rather than parse it.
    # shellcheck disable=SC2016  # $(REGRESS) is for make
    tests=$(make -s --no-print-directory --eval 'dms-print-regress: ; @echo $(REGRESS)' dms-print-regress 2>/dev/null || true)
    if [[ -z ${tests// /} ]]; then
        echo "no pg_regress tests (REGRESS is empty)"
    else
        rm -f results/regression.diffs regression.diffs
        if make installcheck >"$LOGS/regress.log" 2>&1; then rc=0; else rc=$?; fi
        # PG15 lines: "test NAME ... ok 12 ms" (or "     NAME ... FAILED" in a group)
        ok=$(grep -cE '^[[:space:]]*(test[[:space:]]+)?[^[:space:]]+[[:space:]]+\.\.\. (ok|failed \(ignored\))' "$LOGS/regress.log" || true)
        bad=$(grep -cE '^[[:space:]]*(test[[:space:]]+)?[^[:space:]]+[[:space:]]+\.\.\. FAILED' "$LOGS/regress.log" || true)
        grep -E '\.\.\. ' "$LOGS/regress.log" | sed 's/^/  /' || true
        pass regress "$ok"
        if ((bad)); then
            while read -r name; do
                failures+=("regress/$name")
            done < <(grep -E '\.\.\. FAILED' "$LOGS/regress.log" | sed -E 's/^[[:space:]]*(test[[:space:]]+)?([^[:space:]]+).*/\2/')
            failed=$((failed + bad))
        fi
        if ((rc != 0 && bad == 0)); then
            tail_log "$LOGS/regress.log" 30
            fail "regress (make installcheck exited $rc)"
        fi
        for diffs in results/regression.diffs regression.diffs; do
            if [[ -s $diffs ]]; then
                echo "---- $diffs (first 300 lines) ----"
                head -n 300 "$diffs"
                echo "----"
            fi
        done
        echo "regress: $ok passed, $bad failed ($((SECONDS - t)) s)"
    fi
fi

# ---------------------------------------------------------------- 5. unit
if [[ -f test/unit/run.sh ]] && phase_selected unit; then
    selected_any=1
    banner "unit (test/unit/run.sh)"
    t=$SECONDS
    if bash test/unit/run.sh >"$LOGS/unit.log" 2>&1; then rc=0; else rc=$?; fi
    line=$(grep -E '^([A-Za-z]+: )?[0-9]+ passed, [0-9]+ failed' "$LOGS/unit.log" | tail -n 1 || true)
    if [[ -n $line ]]; then
        read -r up uf < <(sed -E 's/^([A-Za-z]+: )?([0-9]+) passed, ([0-9]+) failed.*/\2 \3/' <<<"$line")
        pass unit "$up"
        ((uf)) && fail unit "$uf"
        if ((rc != 0 && uf == 0)); then fail "unit (exit $rc)"; fi
    elif ((rc == 0)); then
        pass unit
    else
        fail "unit (exit $rc)"
    fi
    ((rc != 0)) && tail_log "$LOGS/unit.log" 60
    echo "unit: ${line:-exit $rc} ($((SECONDS - t)) s, log $LOGS/unit.log)"
fi

# ---------------------------------------------------------------- 6. node
node_tests=()
for f in test/integration/*.test.mjs; do
    [[ -e $f ]] || continue
    test_selected "$f" node && node_tests+=("$f")
done
if ((${#node_tests[@]})); then
    selected_any=1
    banner "node --test (${#node_tests[@]} files: ${node_tests[*]##*/})"
    t=$SECONDS
    tap=$LOGS/node.tap
    # One file at a time: the proxies' fault settings are global.
    if timeout -k 10 3600 node --test --test-concurrency=1 --test-timeout=900000 \
        --test-reporter=spec --test-reporter-destination=stdout \
        --test-reporter=tap --test-reporter-destination="$tap" \
        "${node_tests[@]}" 2>&1 | tee "$LOGS/node.log"; then rc=0; else rc=${PIPESTATUS[0]}; fi
    np=$(sed -nE 's/^# pass ([0-9]+)$/\1/p' "$tap" | tail -n 1)
    nf=$(sed -nE 's/^# fail ([0-9]+)$/\1/p' "$tap" | tail -n 1)
    nc=$(sed -nE 's/^# cancelled ([0-9]+)$/\1/p' "$tap" | tail -n 1)
    np=${np:-0} nf=$((${nf:-0} + ${nc:-0}))
    pass node "$np"
    ((nf)) && fail "node ($nf failed or cancelled)" "$nf"
    if ((rc != 0 && nf == 0)); then fail "node --test exited $rc"; fi
    echo "node: $np passed, $nf failed ($((SECONDS - t)) s, TAP in $tap)"
fi

# ---------------------------------------------------------------- 7. shell
shell_tests=()
for f in test/integration/*.sh; do
    [[ -e $f ]] || continue
    test_selected "$f" shell && shell_tests+=("$f")
done
if ((${#shell_tests[@]})); then
    selected_any=1
    banner "shell tests (${#shell_tests[@]})"
    for f in "${shell_tests[@]}"; do
        name=$(basename "$f" .sh)
        t=$SECONDS
        if timeout -k 10 1800 bash "$f" </dev/null >"$LOGS/sh-$name.log" 2>&1; then
            pass "$name"
            echo "ok     $name ($((SECONDS - t)) s)"
        else
            rc=$?
            fail "shell/$name"
            echo "FAILED $name (exit $rc, $((SECONDS - t)) s)"
            tail_log "$LOGS/sh-$name.log" 40
        fi
    done
fi

if ((${#only[@]} && !selected_any)); then
    echo "check.sh: --only ${only[*]} matches no phase and no test file"
    fail "--only ${only[*]} selected nothing"
fi
finish
