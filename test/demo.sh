#!/usr/bin/env bash
# demo.sh — the README's main command: dms_stream on local emulators.
#
# Installs what is needed (unless SKIP_INSTALL=1), builds and installs the
# extension, starts the test bed (PostgreSQL 15, s3rver and kinesalite behind
# SigV4-verifying proxies, all on 127.0.0.1), and walks through the seed's
# scenario as far as the extension goes today: the S3 source with the
# schema01.table01 external table definition and three full-load files, the
# Kinesis target, a full-load-and-cdc task run by the background worker, CDC
# files dropped while it runs, the records read back from the stream and
# counted per operation, a task streaming this database's own table changes
# (snapshot-consistent full load, then logical decoding with transaction
# details), and the delta load of the orders example to S3 as Parquet (read
# back with DuckDB).  Everything started is stopped on exit;
# DMS_DEMO_KEEP=1 leaves the bed running for exploring (stop it with
# test/bed/stop.sh).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [[ "${SKIP_INSTALL:-0}" != 1 ]]; then
    bash test/setup.sh
fi
source test/bed/env.sh
make -s
if [[ -n $DMS_PG_PREFIX ]]; then
    make -s install DESTDIR="$DMS_PG_PREFIX" >/dev/null
else
    make -s install >/dev/null
fi
if [[ "${DMS_DEMO_KEEP:-0}" != 1 ]]; then
    trap 'bash test/bed/stop.sh >/dev/null 2>&1 || true' EXIT
fi
bash test/bed/start.sh --fresh

banner() { printf '\n=== %s\n' "$*"; }
sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

banner "S3 bucket and Kinesis stream on the emulators (aws CLI, signed and verified by the proxies)"
"$AWS" --endpoint-url "$S3_PROXY_URL" s3api create-bucket --bucket dms-demo-source >/dev/null
"$AWS" --endpoint-url "$S3_PROXY_URL" s3api create-bucket --bucket dms-demo-lake >/dev/null
"$AWS" --endpoint-url "$KINESIS_PROXY_URL" kinesis create-stream --stream-name dms-demo-target --shard-count 2
# Three full-load files of the seed's table01, 1,000 rows each.
for f in 1 2 3; do
    "$DMS_BED_PYTHON" - "$f" > "$DMS_BED_DIR/LOAD00$f.csv" <<'PY'
import sys
f = int(sys.argv[1])
for i in range(1000):
    n = (f - 1) * 1000 + i
    print("2024-05-01 %02d:%02d:%02d.%06d,10.1000/xyz%06d,%d,%d.%02d,sig%07d"
          % (n // 3600 % 24, n // 60 % 60, n % 60, n, n, n, n % 1000, n % 100, n))
PY
    "$AWS" --endpoint-url "$S3_PROXY_URL" s3 cp --only-show-errors "$DMS_BED_DIR/LOAD00$f.csv" \
        "s3://dms-demo-source/sourcedata/schema01/table01/LOAD00$f.csv"
done
"$AWS" --endpoint-url "$S3_PROXY_URL" s3 ls --recursive s3://dms-demo-source/

banner "Configuration in DMS's own vocabulary"
sql -v s3="$S3_PROXY_URL" -v kin="$KINESIS_PROXY_URL" <<'SQL'
DROP EXTENSION IF EXISTS dms_stream CASCADE;
CREATE EXTENSION dms_stream;

SELECT dms_stream.create_endpoint('s3-source', 's3', 'source',
  '{"BucketName": "dms-demo-source", "BucketFolder": "sourcedata", "CdcPath": "changedata",
    "CsvDelimiter": ",", "ExternalTableDefinition": {"TableCount": "1", "Tables": [{
      "TableName": "table01", "TablePath": "schema01/table01/", "TableOwner": "schema01",
      "TableColumns": [
        {"ColumnName": "ingest_time", "ColumnType": "DATETIME", "ColumnNullable": "false", "ColumnIsPk": "true"},
        {"ColumnName": "doi", "ColumnType": "STRING", "ColumnLength": "30"},
        {"ColumnName": "id", "ColumnType": "INT8"},
        {"ColumnName": "value", "ColumnType": "NUMERIC", "ColumnPrecision": "5", "ColumnScale": "2"},
        {"ColumnName": "data_sig", "ColumnType": "STRING", "ColumnLength": "10"}],
      "TableColumnsTotal": "5"}]}}',
  endpoint_url => :'s3', region => 'us-east-1', s3_addressing_style => 'path');
SELECT dms_stream.set_endpoint_credentials('s3-source', 'S3RVER', 'S3RVER');

SELECT dms_stream.create_endpoint('kinesis-target', 'kinesis', 'target',
  '{"StreamArn": "arn:aws:kinesis:us-east-1:000000000000:stream/dms-demo-target",
    "MessageFormat": "json-unformatted", "IncludeTransactionDetails": "true",
    "IncludePartitionValue": "true", "PartitionIncludeSchemaTable": "true"}',
  endpoint_url => :'kin', region => 'us-east-1');
SELECT dms_stream.set_endpoint_credentials('kinesis-target', 'S3RVER', 'S3RVER');

SELECT dms_stream.create_task('s3-to-kinesis', 's3-source', 'kinesis-target', 'full-load-and-cdc',
  '{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1",
               "object-locator": {"schema-name": "schema01", "table-name": "%"}, "rule-action": "include"},
              {"rule-type": "object-mapping", "rule-id": "2", "rule-name": "2", "rule-action": "map-record-to-record",
               "object-locator": {"schema-name": "schema01", "table-name": "table01"},
               "mapping-parameters": {"partition-key-type": "primary-key"}}]}',
  '{"FullLoadSettings": {"MaxFullLoadSubTasks": 8}, "TargetMetadata": {"ParallelLoadThreads": 4, "ParallelLoadBufferSize": 500}}');

CREATE SCHEMA dwh;
CREATE TABLE dwh.orders_rds (row_id bigint PRIMARY KEY, customer text, amount numeric(10,2),
                             placed_at timestamptz DEFAULT now());
INSERT INTO dwh.orders_rds (row_id, customer, amount)
SELECT g, 'customer ' || g, g * 1.25 FROM generate_series(377100, 377145) g;
SELECT dms_stream.create_endpoint('lake', 's3', 'target',
  '{"BucketName": "dms-demo-lake", "DataFormat": "parquet", "CompressionType": "zstd"}',
  endpoint_url => :'s3', region => 'us-east-1', s3_addressing_style => 'path');
SELECT dms_stream.set_endpoint_credentials('lake', 'S3RVER', 'S3RVER');
INSERT INTO dms_stream.delta_load_controller
  (target_table_name, source_schema, source_table, filter_column, filter_operator,
   start_value, end_value, active_flag, output_s3_prefix, target_endpoint)
VALUES ('orders_s3', 'dwh', 'orders_rds', 'row_id', 'lte', '377145', '377145', true, 'etl/raw', 'lake');
SQL

sql <<'SQL'
\echo
\echo endpoints:
SELECT endpoint_name, engine, endpoint_type, endpoint_url, jsonb_pretty(settings - 'ExternalTableDefinition') AS settings
  FROM dms_stream.endpoint ORDER BY 1;
\echo the external table definition, normalised:
SELECT table_owner || '.' || table_name AS "table", column_ordinal AS "#", column_name, column_type,
       column_length AS len, column_precision AS prec, column_scale AS scale, column_is_pk AS pk
  FROM dms_stream.external_column ORDER BY column_ordinal;
\echo tasks:
SELECT task_name, source_endpoint, target_endpoint, migration_type, status FROM dms_stream.task;
\echo delta-load controller:
SELECT target_table_name, source_schema || '.' || source_table AS source, filter_column,
       filter_operator, start_value, output_s3_prefix, active_flag FROM dms_stream.delta_load_controller;
SQL

banner "The extension itself talks to S3 and Kinesis (signed in C, verified by the proxies): test_endpoint"
sql <<'SQL'
SELECT 's3-source' AS endpoint, * FROM dms_stream.test_endpoint('s3-source')
UNION ALL SELECT 'kinesis-target', * FROM dms_stream.test_endpoint('kinesis-target')
UNION ALL SELECT 'lake', * FROM dms_stream.test_endpoint('lake');
\echo objects under the BucketFolder of s3-source, listed by the extension:
SELECT key, size FROM dms_stream.s3_list_objects('s3-source');
SQL

banner "Full load, then CDC: the background worker streams the files to Kinesis in DMS's message format"
sql -c "ALTER SYSTEM SET dms_stream.poll_interval = '1s'" -c "SELECT pg_reload_conf()" >/dev/null
sql -c "SELECT dms_stream.start_task('s3-to-kinesis');" >/dev/null
wait_task() {    # wait_task TASK SQL-returning-t WHAT
    for _ in $(seq 1 180); do
        [[ $(psql -X -At -c "$2") == t ]] && return 0
        [[ $(psql -X -At -v task="$1" <<<"SELECT status FROM dms_stream.task WHERE task_name = :'task'") == failed ]] && break
        sleep 1
    done
    echo "demo: gave up waiting for $3" >&2
    psql -X -c "SELECT task, status, phase, last_error FROM dms_stream.task_status" >&2
    exit 1
}
wait_task s3-to-kinesis "SELECT coalesce(bool_and(\"TableState\" = 'Table completed'), false) FROM dms_stream.table_statistics_view" "the full load"
sql <<'SQL'
SELECT task, status, phase, progress_percent, records_per_second FROM dms_stream.task_status;
SQL

# Two CDC files, as another system would drop them: operation, table, schema, columns.
"$DMS_BED_PYTHON" - > "$DMS_BED_DIR/CDC00001.csv" <<'PY'
for n in range(3000, 3100):
    print("INSERT,table01,schema01,2024-05-02 00:00:%02d,10.1000/new%06d,%d,%d.50,new%07d" % (n % 60, n, n, n % 1000, n))
for n in range(0, 50):
    print("U,table01,schema01,2024-05-01 %02d:%02d:%02d,10.1000/upd%06d,%d,1.25,upd%07d" % (n // 3600, n // 60 % 60, n % 60, n, n, n))
PY
"$DMS_BED_PYTHON" - > "$DMS_BED_DIR/CDC00002.csv" <<'PY'
for n in range(50, 70):
    print("delete,table01,schema01,2024-05-01 %02d:%02d:%02d,10.1000/xyz%06d,%d,%d.%02d,sig%07d" % (n // 3600, n // 60 % 60, n % 60, n, n, n % 1000, n % 100, n))
PY
for f in CDC00001 CDC00002; do
    "$AWS" --endpoint-url "$S3_PROXY_URL" s3 cp --only-show-errors "$DMS_BED_DIR/$f.csv" \
        "s3://dms-demo-source/sourcedata/changedata/$f.csv"
done
wait_task s3-to-kinesis "SELECT \"Inserts\" = 100 AND \"Updates\" = 50 AND \"Deletes\" = 20 FROM dms_stream.table_statistics_view" "the CDC files"
sql -c "SELECT dms_stream.stop_task('s3-to-kinesis');" >/dev/null
wait_task s3-to-kinesis "SELECT status = 'stopped' FROM dms_stream.task WHERE task_name = 's3-to-kinesis'" "the task to stop"

sql <<'SQL'
SELECT task, status, stop_reason, last_error FROM dms_stream.task_status;
SELECT "SchemaName", "TableName", "FullLoadRows", "Inserts", "Updates", "Deletes", "FullLoadErrorRows", "TableState"
  FROM dms_stream.table_statistics_view;
\echo records read back from the stream, by operation:
SELECT data_json #>> '{metadata,operation}' AS operation, count(*) AS records,
       count(DISTINCT data_json #>> '{metadata,event-id}') AS distinct_event_ids
  FROM dms_stream.kinesis_read_records('kinesis-target', max_records => 10000) GROUP BY 1 ORDER BY 1;
\echo one of them, as a Lambda or KCL consumer sees it:
\x on
SELECT shard_id, sequence_number, partition_key, rtrim(data_text, E'\n') AS data
  FROM dms_stream.kinesis_read_records('kinesis-target', max_records => 10000)
 WHERE data_json #>> '{data,id}' = '3001';
SQL

banner "This database's own tables to Kinesis: snapshot-consistent full load, then logical decoding with transactions"
"$AWS" --endpoint-url "$KINESIS_PROXY_URL" kinesis create-stream --stream-name dms-demo-local --shard-count 1
sql -v kin="$KINESIS_PROXY_URL" <<'SQL'
\o /dev/null
CREATE SCHEMA shop;
CREATE TABLE shop.customers (customer_id int PRIMARY KEY, name text NOT NULL, credit numeric(10,2));
INSERT INTO shop.customers SELECT g, 'customer ' || g, g * 10 FROM generate_series(1, 500) g;
SELECT dms_stream.create_endpoint('this-database', 'postgres', 'source', '{}');
SELECT dms_stream.create_endpoint('kinesis-local', 'kinesis', 'target',
  '{"StreamArn": "arn:aws:kinesis:us-east-1:000000000000:stream/dms-demo-local",
    "MessageFormat": "json-unformatted", "IncludeTransactionDetails": true,
    "IncludePartitionValue": true, "PartitionIncludeSchemaTable": true}', :'kin');
SELECT dms_stream.create_task('local-to-kinesis', 'this-database', 'kinesis-local', 'full-load-and-cdc',
  '{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "shop", "rule-action": "include",
               "object-locator": {"schema-name": "shop", "table-name": "%"}}]}');
SELECT dms_stream.start_task('local-to-kinesis');
\o
\echo 500 rows in shop.customers; task local-to-kinesis (full-load-and-cdc, postgres source) started
SQL
wait_task local-to-kinesis "SELECT coalesce(bool_and(\"TableState\" = 'Table completed'), false) FROM dms_stream.table_statistics_view WHERE \"TaskName\" = 'local-to-kinesis'" "the local full load"
sql <<'SQL'
\echo changes in two transactions while the task runs:
BEGIN;
INSERT INTO shop.customers VALUES (501, 'new customer', 0), (502, 'another one', 5);
UPDATE shop.customers SET credit = credit + 1 WHERE customer_id = 7;
COMMIT;
DELETE FROM shop.customers WHERE customer_id = 9;
SQL
wait_task local-to-kinesis "SELECT \"Inserts\" = 2 AND \"Updates\" = 1 AND \"Deletes\" = 1 FROM dms_stream.table_statistics_view WHERE \"TaskName\" = 'local-to-kinesis'" "the local changes"
sql <<'SQL'
SELECT "SchemaName", "TableName", "FullLoadRows", "Inserts", "Updates", "Deletes", "TableState"
  FROM dms_stream.table_statistics_view WHERE "TaskName" = 'local-to-kinesis';
SELECT task, slot_name, unconfirmed_bytes, retained_bytes FROM dms_stream.replication_slot_lag;
\echo records read back from the stream, by operation:
SELECT data_json #>> '{metadata,operation}' AS operation, count(*) AS records,
       count(DISTINCT data_json #>> '{metadata,event-id}') AS distinct_event_ids
  FROM dms_stream.kinesis_read_records('kinesis-local', max_records => 10000) GROUP BY 1 ORDER BY 1;
\echo the changes with their transaction details (record id in the transaction, last record flagged):
SELECT data_json #>> '{metadata,operation}' AS operation, data_json #>> '{data,customer_id}' AS customer_id,
       data_json #>> '{metadata,transaction-id}' AS xid,
       data_json #>> '{metadata,transaction-record-id}' AS record_id,
       data_json #>> '{metadata,stream-position}' AS commit_lsn,
       coalesce(data_json #>> '{metadata,transaction-last}', '') AS last
  FROM dms_stream.kinesis_read_records('kinesis-local', max_records => 10000)
 WHERE data_json #>> '{metadata,operation}' <> 'load'
 ORDER BY sequence_number;
SELECT dms_stream.stop_task('local-to-kinesis') \g /dev/null
SQL

banner "Delta load: the seed's orders example extracted to S3 as Parquet, watermark advanced in one transaction"
sql <<'SQL'
\echo the query the run will execute (identifiers quoted, values as typed parameters):
SELECT * FROM dms_stream.delta_load_query('orders_s3');
LISTEN dms_stream_delta_load;
CALL dms_stream.run_delta_load('orders_s3');
SELECT target_table_name, watermark, next_file_number, last_status, last_rows, last_bytes, last_files
  FROM dms_stream.delta_load_controller;
SQL
"$AWS" --endpoint-url "$S3_PROXY_URL" s3 ls --recursive s3://dms-demo-lake/
"$AWS" --endpoint-url "$S3_PROXY_URL" s3 cp --only-show-errors \
    s3://dms-demo-lake/etl/raw/dwh/orders_s3/LOAD00000001.parquet "$DMS_BED_DIR/LOAD00000001.parquet"
echo "LOAD00000001.parquet read back with DuckDB (fetched with the aws CLI):"
node --input-type=module - "$DMS_BED_DIR/LOAD00000001.parquet" <<'JS'
import { DuckDBInstance } from '@duckdb/node-api';
const c = await (await DuckDBInstance.create(':memory:')).connect();
const f = process.argv[2].replace(/'/g, "''");
const show = async (q) => { const r = await c.runAndReadAll(q); console.table(r.getRowObjects().map((o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : (v && typeof v === 'object' ? String(v) : v)])))); };
await show(`SELECT count(*) AS rows, min(row_id) AS first_row_id, max(row_id) AS last_row_id, sum(amount) AS amount FROM read_parquet('${f}')`);
await show(`SELECT * FROM read_parquet('${f}') ORDER BY row_id LIMIT 3`);
await show(`SELECT path_in_schema AS column, type, compression FROM parquet_metadata('${f}') WHERE row_group_id = 0`);
JS
sql <<'SQL'
\echo new orders arrive; the DBA moves the window on (gte the next row_id) and runs it again:
INSERT INTO dwh.orders_rds (row_id, customer, amount)
SELECT g, 'customer ' || g, g * 1.25 FROM generate_series(377146, 377200) g;
UPDATE dms_stream.delta_load_controller SET filter_operator = 'gte', start_value = '377146', end_value = NULL
 WHERE target_table_name = 'orders_s3';
CALL dms_stream.run_delta_load('orders_s3');
SELECT run_id, status, rows_processed AS rows, files_written AS files, details->>'watermark_before' AS watermark_before,
       details->>'watermark_after' AS watermark_after, details->'files'->0->>'key' AS file
  FROM dms_stream.run_history WHERE run_kind = 'delta' ORDER BY run_id;
SQL

banner "A malformed definition is rejected with the JSON path, what is wrong and how to fix it"
sql <<'SQL' || true
\set SHOW_CONTEXT never
SELECT * FROM dms_stream.register_external_table_definition('s3-source',
  '{"TableCount": "1", "Tables": [{"TableName": "table01", "TablePath": "schema01/table01/",
    "TableOwner": "schema01", "TableColumnsTotal": "2", "TableColumns": [
      {"ColumnName": "id", "ColumnType": "INT8"},
      {"ColumnName": "value", "ColumnType": "NUMERIC", "ColumnPrecision": "40", "ColumnScale": "2"}]}]}');
SQL

banner "Every request above was checked by the SigV4-verifying proxies"
for p in "$S3_PROXY_URL" "$KINESIS_PROXY_URL"; do
    curl -s "$p/__proxy/stats" | "$DMS_BED_PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
print("%-26s %3d requests, %3d signatures verified, %d rejected" % (sys.argv[1], d["requests"], d["verified"], d["rejected_total"]))' "$p"
done
