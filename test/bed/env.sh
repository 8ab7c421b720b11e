# Sourceable environment of the dms_stream test bed: where PostgreSQL, the AWS
# emulators and the verifying proxies listen, and the bed's AWS credentials.
# Usage: source test/bed/env.sh   (from any directory; sets no shell options)
#
# Only variables are set here; start.sh/stop.sh start and stop the servers.
# shellcheck shell=bash

DMS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export DMS_ROOT
export DMS_BED_DIR="${DMS_BED_DIR:-/tmp/dms_stream_bed}"

# Ports (all on 127.0.0.1). Defaults are the contract; DMS_BED_PORT_OFFSET=N
# shifts them all (with another DMS_BED_DIR) to run a second, private bed on
# a machine that is shared, e.g. DMS_BED_DIR=/tmp/bed2 DMS_BED_PORT_OFFSET=100.
_off=${DMS_BED_PORT_OFFSET:-0}
export DMS_BED_PG_PORT=$((55432 + _off))
export DMS_BED_KINESALITE_PORT=$((14567 + _off))
export DMS_BED_S3RVER_PORT=$((14568 + _off))
export DMS_BED_S3_PROXY_PORT=$((14580 + _off))
export DMS_BED_KINESIS_PROXY_PORT=$((14581 + _off))
unset _off

# PostgreSQL (throwaway cluster run as the postgres user). DMS_PG_PREFIX=DIR
# runs a private copy of the server installed under DIR (check.sh copies
# /usr/lib/postgresql/15 and /usr/share/postgresql/15 there and installs the
# extension with DESTDIR=DIR), so that engineers sharing a machine do not
# replace each other's installed library. Unset: the system's server.
export DMS_PG_PREFIX="${DMS_PG_PREFIX:-}"
export PGBIN="$DMS_PG_PREFIX/usr/lib/postgresql/15/bin"
export PGHOST=127.0.0.1
export PGPORT=$DMS_BED_PG_PORT
export PGUSER=postgres
export PGDATABASE=postgres
export DMS_BED_PGDATA="$DMS_BED_DIR/pgdata"
export DMS_BED_PGRUN="$DMS_BED_DIR/pgrun"          # socket dir and pg.log
export DMS_BED_PRELOAD="${DMS_BED_PRELOAD:-dms_stream,pg_cron}"

# Endpoints: the extension and the tests talk to the proxies; the direct
# emulator URLs are for checking what really arrived (no signature checks).
export S3_PROXY_URL="http://127.0.0.1:$DMS_BED_S3_PROXY_PORT"
export KINESIS_PROXY_URL="http://127.0.0.1:$DMS_BED_KINESIS_PROXY_PORT"
export S3RVER_URL="http://127.0.0.1:$DMS_BED_S3RVER_PORT"
export KINESALITE_URL="http://127.0.0.1:$DMS_BED_KINESALITE_PORT"
export S3RVER_DIR="$DMS_BED_DIR/s3rver"           # objects: $S3RVER_DIR/BUCKET/KEY._S3rver_object

# AWS credentials of the bed. s3rver only accepts the key id S3RVER; the
# proxies also verify the other pairs below (AWS's SigV4 test-suite key, and
# a temporary key with a session token) and present them to s3rver as S3RVER.
export AWS_ACCESS_KEY_ID=S3RVER
export AWS_SECRET_ACCESS_KEY=S3RVER
export DMS_BED_ALT_ACCESS_KEY_ID=AKIDEXAMPLE
export DMS_BED_ALT_SECRET_ACCESS_KEY='wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'
# Temporary credentials: the proxies require exactly this X-Amz-Security-Token with them.
export DMS_BED_SESSION_ACCESS_KEY_ID=ASIABEDSESSIONKEY0
export DMS_BED_SESSION_SECRET_ACCESS_KEY='bedSessionSecret/0000000000000000000000'
export DMS_BED_SESSION_TOKEN=bed-session-token-0
unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE
export AWS_DEFAULT_REGION=us-east-1
export AWS_REGION=us-east-1
export AWS=/usr/bin/aws                            # Debian's aws CLI v2 (the pyenv one on PATH is v1)
export AWS_PAGER=""
export AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE="$DMS_BED_DIR/aws/config"   # written by start.sh: the host's ~/.aws is never read
export AWS_SHARED_CREDENTIALS_FILE="$DMS_BED_DIR/aws/credentials"

# Debian's python3 (its python3-botocore runs the proxies)
export DMS_BED_PYTHON=/usr/bin/python3
