#!/usr/bin/env bash
# Install everything the dms_stream build and test bed need on a fresh
# Debian 12 machine (run as root): Debian packages (PostgreSQL 15 + server
# headers, pg_cron, wal2json, the C libraries, aws CLI v2, botocore for the
# proxies) and the pinned npm packages of package-lock.json (npm ci).
# Idempotent; SKIP_INSTALL=1 skips it. Installing upgrades the postgresql-15
# binaries, so run it before any cluster of the bed starts (check.sh does).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ ${SKIP_INSTALL:-0} == 1 ]]; then
    echo "setup: SKIP_INSTALL=1, nothing installed"
    exit 0
fi
if [[ $(id -u) != 0 ]]; then
    echo "setup: run as root (apt-get)" >&2
    exit 1
fi

packages=(
    # PostgreSQL 15 server, client and PGXS headers; extensions the bed preloads
    postgresql-15 postgresql-client-15 postgresql-server-dev-15
    postgresql-15-cron postgresql-15-wal2json
    # libraries the extension links (see the Makefile's pkg-config line)
    libcurl4-openssl-dev libssl-dev libjansson-dev libxml2-dev
    zlib1g-dev libzstd-dev libsnappy-dev
    # toolchain
    make gcc pkg-config
    # test bed: aws CLI v2 (/usr/bin/aws), botocore for the SigV4 proxies,
    # curl (signed/unsigned test requests), socat (TCP relays), ss, runuser
    awscli python3 python3-botocore python3-boto3 curl socat iproute2 util-linux procps
)

export DEBIAN_FRONTEND=noninteractive
# Retry: a mirror hiccup should not fail a CI run.
for attempt in 1 2 3; do
    if apt-get update -q; then break; fi
    [[ $attempt == 3 ]] && { echo "setup: apt-get update failed" >&2; exit 1; }
    sleep 5
done
for attempt in 1 2 3; do
    if apt-get install -y -q -o Dpkg::Options::=--force-confold "${packages[@]}"; then break; fi
    [[ $attempt == 3 ]] && { echo "setup: apt-get install failed" >&2; exit 1; }
    sleep 5
done

# Node.js is part of the machine image (Node 20). Debian's nodejs (18) is
# only a fallback for a machine that has none.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "setup: node/npm missing, installing Debian's nodejs and npm" >&2
    apt-get install -y -q nodejs npm
fi
echo "setup: node $(node --version), npm $(npm --version 2>/dev/null)"

# npm packages, exactly as locked. npm ci wipes node_modules, so skip it when
# node_modules was installed from this very lockfile.
cd "$root"
stamp=node_modules/.dms_lock_sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1) $(node --version)"
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
    echo "setup: node_modules already matches package-lock.json"
else
    # --ignore-scripts: no package needs an install script (leveldown ships
    # prebuilt binaries); the lockfile has no registry host (.npmrc).
    npm ci --ignore-scripts --no-audit --no-fund
    echo "$want" >"$stamp"
fi
echo "setup: done"
