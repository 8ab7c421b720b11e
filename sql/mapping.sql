-- Table mappings applied to tables and rows (mapping_preview), and Kinesis
-- records in AWS DMS's message format (render_message), including the DMS
-- documentation's examples and records observed from DMS, field by field.
\set SHOW_CONTEXT never
CREATE EXTENSION dms_stream;

-- Helpers: a selection rule, a rules document, the selection decision, the
-- column fates of a preview.
CREATE FUNCTION pg_temp.sr(id int, action text, s text, t text, extra jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('rule-type', 'selection', 'rule-id', id::text, 'rule-name', id::text,
          'rule-action', action, 'object-locator', jsonb_build_object('schema-name', s, 'table-name', t)) || extra $$;
CREATE FUNCTION pg_temp.tr(id int, target text, action text, locator jsonb, extra jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('rule-type', 'transformation', 'rule-id', id::text, 'rule-name', 't' || id,
          'rule-target', target, 'rule-action', action, 'object-locator', locator) || extra $$;
CREATE FUNCTION pg_temp.rules(VARIADIC r jsonb[]) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('rules', to_jsonb(r)) $$;
CREATE FUNCTION pg_temp.sel(rules jsonb, s text, t text) RETURNS text LANGUAGE sql AS
$$ SELECT (p->>'selected') || ': ' || (p->'selection'->>'reason')
     FROM dms_stream.mapping_preview(rules, s, t, NULL) p $$;
CREATE FUNCTION pg_temp.cols(p jsonb) RETURNS TABLE (source text, target text, rule_id int, rule_action text)
LANGUAGE sql AS
$$ SELECT c->>'source', c->>'target', (c->>'rule-id')::int, c->>'rule-action'
     FROM jsonb_array_elements(p->'columns') c $$;

-- ===================================================================
-- Selection
-- ===================================================================

-- Wildcards: % any run, _ one character, [_] a literal underscore, [ab] a
-- set, [a-d] a range; names are case-sensitive; characters are UTF-8.
SELECT pattern, name,
       (dms_stream.mapping_preview(pg_temp.rules(pg_temp.sr(1, 'include', 's', pattern)), 's', name, NULL)->>'selected')::boolean AS selected
  FROM (VALUES ('%', 'anything'), ('%', ''), ('DMS%', 'DMS_log'), ('DMS%', 'dms_log'),
               ('T_st', 'Test'), ('T_st', 'Tst'), ('T_st', 'Toast'),
               ('a[_]b', 'a_b'), ('a[_]b', 'axb'), ('a_b', 'axb'),
               ('[ab]x', 'bx'), ('[ab]x', 'cx'), ('t[a-c]%', 'tb_1'), ('t[a-c]%', 'td_1'),
               ('%[0-9]', 'orders2024'), ('%[0-9]', 'orders'), ('100[%]', '100%'), ('100[%]', '1000'),
               ('caf_', 'café'), ('caf[é]', 'café'), ('%_%_', 'ab'), ('%_%_', 'a'),
               ('Te%t', 'Test'), ('Te%t', 'Tests'), ('test', 'Test')) v(pattern, name);

-- Schema patterns too.
SELECT pg_temp.sel(pg_temp.rules(pg_temp.sr(1, 'include', 'sales[_]%', '%')), 'sales_eu', 'orders');
SELECT pg_temp.sel(pg_temp.rules(pg_temp.sr(1, 'include', 'sales[_]%', '%')), 'salesXeu', 'orders');

-- The DMS guide's include/exclude example: exclude wins over include.
\set guide_selection '{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "object-locator": {"schema-name": "Test", "table-name": "%"}, "rule-action": "include"}, {"rule-type": "selection", "rule-id": "2", "rule-name": "2", "object-locator": {"schema-name": "Test", "table-name": "DMS%"}, "rule-action": "exclude"}]}'
SELECT t, pg_temp.sel(:'guide_selection', s, t)
  FROM (VALUES ('Test', 'Customers'), ('Test', 'DMS_audit'), ('Test', 'dms_audit'), ('Other', 'Customers')) v(s, t);

-- Explicit selects exactly one table (its name has no wildcards: _ is a
-- plain character), and exclude wins over it too.
SELECT t, pg_temp.sel(pg_temp.rules(pg_temp.sr(1, 'explicit', 'hr', 'emp_1')), 'hr', t)
  FROM (VALUES ('emp_1'), ('empX1'), ('emp_10')) v(t);
SELECT pg_temp.sel(pg_temp.rules(pg_temp.sr(1, 'explicit', 'hr', 'emp'),
                                 pg_temp.sr(2, 'exclude', 'hr', '%')), 'hr', 'emp');
-- The rule with the lowest id is reported, whatever the document order.
SELECT pg_temp.sel(pg_temp.rules(pg_temp.sr(9, 'include', 'hr', '%'),
                                 pg_temp.sr(3, 'include', 'hr', 'e%')), 'hr', 'emp');
-- table-type: a rule for views does not select tables.
SELECT pg_temp.sel(pg_temp.rules(pg_temp.sr(1, 'include', 'hr', '%', '{"object-locator": {"schema-name": "hr", "table-name": "%", "table-type": "view"}}')), 'hr', 'emp');
SELECT pg_temp.sel(pg_temp.rules(pg_temp.sr(1, 'include', 'hr', '%', '{"object-locator": {"schema-name": "hr", "table-name": "%", "table-type": "all"}}')), 'hr', 'emp');

-- load-order: the highest of the rules selecting the table.
SELECT t, dms_stream.mapping_preview(pg_temp.rules(
           pg_temp.sr(1, 'include', 'hr', '%', '{"load-order": "1"}'),
           pg_temp.sr(2, 'include', 'hr', 'loadfirst', '{"load-order": 2}')), 'hr', t, NULL)->'selection'->'load-order' AS load_order
  FROM (VALUES ('loadfirst'), ('loadsecond')) v(t);

-- ===================================================================
-- Transformations
-- ===================================================================

-- Every action, on schema, table and columns; locators match source names.
\set trans '{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include", "object-locator": {"schema-name": "%", "table-name": "%"}}, {"rule-type": "transformation", "rule-id": "2", "rule-name": "2", "rule-action": "rename", "rule-target": "schema", "object-locator": {"schema-name": "Test"}, "value": "Test1"}, {"rule-type": "transformation", "rule-id": "3", "rule-name": "3", "rule-action": "add-prefix", "rule-target": "table", "object-locator": {"schema-name": "Test", "table-name": "%"}, "value": "DMS_"}, {"rule-type": "transformation", "rule-id": "4", "rule-name": "4", "rule-action": "rename", "rule-target": "column", "object-locator": {"schema-name": "Test", "table-name": "ITEM", "column-name": "ID"}, "value": "item_id"}, {"rule-type": "transformation", "rule-id": "5", "rule-name": "5", "rule-action": "remove-column", "rule-target": "column", "object-locator": {"schema-name": "Test", "table-name": "ITEM", "column-name": "col%"}}, {"rule-type": "transformation", "rule-id": "6", "rule-name": "6", "rule-action": "convert-lowercase", "rule-target": "column", "object-locator": {"schema-name": "Test", "table-name": "ITEM", "column-name": "NAME"}}, {"rule-type": "transformation", "rule-id": "7", "rule-name": "7", "rule-action": "convert-uppercase", "rule-target": "column", "object-locator": {"schema-name": "Test", "table-name": "ITEM", "column-name": "price"}}, {"rule-type": "transformation", "rule-id": "8", "rule-name": "8", "rule-action": "add-suffix", "rule-target": "column", "object-locator": {"schema-name": "Test", "table-name": "ITEM", "column-name": "qty"}, "value": "_n"}, {"rule-type": "transformation", "rule-id": "9", "rule-name": "9", "rule-action": "remove-prefix", "rule-target": "column", "object-locator": {"schema-name": "Test", "table-name": "ITEM", "column-name": "x_%"}, "value": "x_"}, {"rule-type": "transformation", "rule-id": "20", "rule-name": "20", "rule-action": "replace-prefix", "rule-target": "column", "object-locator": {"schema-name": "%", "table-name": "%", "column-name": "%"}, "value": "NewPre_", "old-value": "Pre_"}, {"rule-type": "transformation", "rule-id": "11", "rule-name": "11", "rule-action": "remove-suffix", "rule-target": "column", "object-locator": {"schema-name": "Test", "table-name": "ITEM", "column-name": "%_DMS"}, "value": "_DMS"}, {"rule-type": "transformation", "rule-id": "12", "rule-name": "12", "rule-action": "replace-suffix", "rule-target": "column", "object-locator": {"schema-name": "Test", "table-name": "ITEM", "column-name": "%_old"}, "value": "_new", "old-value": "_old"}]}'
SELECT p->'target' AS target
  FROM dms_stream.mapping_preview(:'trans', 'Test', 'ITEM',
         ARRAY['ID', 'col1', 'col2', 'NAME', 'price', 'qty', 'x_a', 'Pre_b', 'Prec', 'c_DMS', 'd_old', 'e']) p;
SELECT c.*
  FROM dms_stream.mapping_preview(:'trans', 'Test', 'ITEM',
         ARRAY['ID', 'col1', 'col2', 'NAME', 'price', 'qty', 'x_a', 'Pre_b', 'Prec', 'c_DMS', 'd_old', 'e']) p,
       pg_temp.cols(p) c;
-- Another schema keeps its name; rule 20 (all schemas) still applies.
SELECT p->'target' AS target, p->'columns' AS columns
  FROM dms_stream.mapping_preview(:'trans', 'Other', 'ITEM', ARRAY['Pre_x', 'ID']) p;

-- Table-level actions: lower/upper case (ASCII letters only), prefixes and
-- suffixes that are absent leave the name alone.
SELECT action, value, old, t,
       dms_stream.mapping_preview(pg_temp.rules(pg_temp.sr(1, 'include', '%', '%'),
           pg_temp.tr(2, 'table', action, '{"schema-name": "%", "table-name": "%"}',
                      jsonb_strip_nulls(jsonb_build_object('value', value, 'old-value', old)))),
           's', t, NULL)->'target'->>'table-name' AS target_table
  FROM (VALUES ('convert-lowercase', NULL, NULL, 'Orders_ÄB'), ('convert-uppercase', NULL, NULL, 'orders_äb'),
               ('add-prefix', 'DMS_', NULL, 'orders'), ('remove-prefix', 'tmp_', NULL, 'tmp_orders'),
               ('remove-prefix', 'tmp_', NULL, 'orders'), ('replace-prefix', 'new_', 'old_', 'old_orders'),
               ('replace-prefix', 'new_', 'old_', 'orders'), ('add-suffix', '_v2', NULL, 'orders'),
               ('remove-suffix', '_DMS', NULL, 'orders_DMS'), ('remove-suffix', '_DMS', NULL, 'orders_dms'),
               ('replace-suffix', '_new', '_old', 'orders_old'), ('rename', 'sales', NULL, 'orders')) v(action, value, old, t);

-- The lowest rule-id wins when several rules target the same object,
-- whatever their order in the document.
SELECT p->'target'->'table-rule' AS table_rule, p->'target'->>'table-name' AS table_name, p->'columns' AS columns
  FROM dms_stream.mapping_preview(pg_temp.rules(pg_temp.sr(1, 'include', '%', '%'),
         pg_temp.tr(30, 'table', 'rename', '{"schema-name": "%", "table-name": "%"}', '{"value": "from_30"}'),
         pg_temp.tr(20, 'table', 'rename', '{"schema-name": "s", "table-name": "t"}', '{"value": "from_20"}'),
         pg_temp.tr(25, 'column', 'rename', '{"schema-name": "s", "table-name": "t", "column-name": "a"}', '{"value": "from_25"}'),
         pg_temp.tr(21, 'column', 'remove-column', '{"schema-name": "%", "table-name": "%", "column-name": "a"}')),
       's', 't', ARRAY['a', 'b']) p;

-- A rule matching every column is the one action of each column it
-- matches, even when it changes nothing: a remove-suffix rule with a higher
-- id then never applies.
SELECT c.*
  FROM dms_stream.mapping_preview(pg_temp.rules(pg_temp.sr(1, 'include', '%', '%'),
         pg_temp.tr(5, 'column', 'replace-prefix', '{"schema-name": "%", "table-name": "%", "column-name": "%"}', '{"value": "n_", "old-value": "o_"}'),
         pg_temp.tr(6, 'column', 'remove-suffix', '{"schema-name": "%", "table-name": "%", "column-name": "%_DMS"}', '{"value": "_DMS"}')),
       's', 't', ARRAY['o_a', 'b_DMS']) p,
       pg_temp.cols(p) c;

-- Columns by DMS type (object-locator data-type).
SELECT c.*
  FROM dms_stream.mapping_preview(pg_temp.rules(pg_temp.sr(1, 'include', '%', '%'),
         pg_temp.tr(2, 'column', 'remove-column', '{"schema-name": "%", "table-name": "%", "column-name": "%", "data-type": "clob"}')),
       's', 't', ARRAY['id', 'notes', 'body'], ARRAY['INT4', 'STRING', 'CLOB']) p,
       pg_temp.cols(p) c;

-- Names that clash or vanish stop the table.
SELECT p->>'error' AS error
  FROM dms_stream.mapping_preview(pg_temp.rules(pg_temp.sr(1, 'include', '%', '%'),
         pg_temp.tr(2, 'column', 'convert-lowercase', '{"schema-name": "%", "table-name": "%", "column-name": "%"}')),
       's', 't', ARRAY['ID', 'id']) p;
SELECT p->>'error' AS error
  FROM dms_stream.mapping_preview(pg_temp.rules(pg_temp.sr(1, 'include', '%', '%'),
         pg_temp.tr(2, 'column', 'remove-prefix', '{"schema-name": "%", "table-name": "%", "column-name": "%"}', '{"value": "tmp"}')),
       's', 't', ARRAY['tmp', 'id']) p;

-- ===================================================================
-- Object mapping and filters in previews
-- ===================================================================

-- The DMS guide's Kinesis attribute-mapping example (verbatim rules).
\set kinesis_guide '{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include", "object-locator": {"schema-name": "Test", "table-name": "%"}}, {"rule-type": "object-mapping", "rule-id": "2", "rule-name": "TransformToKinesis", "rule-action": "map-record-to-record", "target-table-name": "CustomerData", "object-locator": {"schema-name": "Test", "table-name": "Customers"}, "mapping-parameters": {"partition-key-type": "attribute-name", "partition-key-name": "CustomerName", "exclude-columns": ["firstname", "lastname", "homeaddress", "homephone", "workaddress", "workphone"], "attribute-mappings": [{"target-attribute-name": "CustomerName", "attribute-type": "scalar", "attribute-sub-type": "string", "value": "${lastname}, ${firstname}"}, {"target-attribute-name": "ContactDetails", "attribute-type": "document", "attribute-sub-type": "json", "value": {"Home": {"Address": "${homeaddress}", "Phone": "${homephone}"}, "Work": {"Address": "${workaddress}", "Phone": "${workphone}"}}}]}}]}'
\set customer_columns '{CustomerId,FirstName,LastName,HomeAddress,HomePhone,WorkAddress,WorkPhone,StoreId}'
SELECT jsonb_pretty(dms_stream.mapping_preview(:'kinesis_guide', 'Test', 'Customers', :'customer_columns', NULL, '{CustomerId}'));
-- Another table of the schema: no object mapping, DMS's default keys.
SELECT p->'object-mapping' AS object_mapping, p->'partition-key' AS partition_key
  FROM dms_stream.mapping_preview(:'kinesis_guide', 'Test', 'Orders', '{id}', NULL, '{id}') p;
-- A template naming no column, and exclude-columns naming none, warn.
SELECT jsonb_array_elements_text(p->'warnings') AS warnings
  FROM dms_stream.mapping_preview(:'kinesis_guide', 'Test', 'Customers', '{CustomerId,FirstName,LastName}') p;

-- The DMS guide's filter example: conditions OR-ed, compared as numbers for
-- a numeric column, as strings for a STRING column.
\set filter_guide '{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "object-locator": {"schema-name": "test", "table-name": "employee"}, "rule-action": "include", "filters": [{"filter-type": "source", "column-name": "empid", "filter-conditions": [{"filter-operator": "lte", "value": "10"}, {"filter-operator": "between", "start-value": "50", "end-value": "75"}, {"filter-operator": "gte", "value": "100"}]}]}]}'
SELECT jsonb_pretty(p->'filters') AS filters
  FROM dms_stream.mapping_preview(:'filter_guide', 'test', 'employee', '{empid,name}', '{INT4,STRING}') p;
SELECT p->'filters'->0->'filters'->0->>'compare-as' AS compare_as
  FROM dms_stream.mapping_preview(:'filter_guide', 'test', 'employee', '{empid}') p;
-- A filter on a missing column, or with a value of the wrong kind, stops the table.
SELECT p->>'error' AS error FROM dms_stream.mapping_preview(:'filter_guide', 'test', 'employee', '{id}') p;
SELECT p->>'error' AS error
  FROM dms_stream.mapping_preview(pg_temp.rules(pg_temp.sr(1, 'include', 's', 't',
         '{"filters": [{"filter-type": "source", "column-name": "d", "filter-conditions": [{"filter-operator": "gte", "value": "2024-02-30"}]}]}')),
       's', 't', '{d}', '{DATE}') p;
-- Another include rule without filters lets every row through.
SELECT jsonb_array_length(p->'filters') AS filter_sets
  FROM dms_stream.mapping_preview(pg_temp.rules(
         pg_temp.sr(1, 'include', 's', 't', '{"filters": [{"filter-type": "source", "column-name": "a", "filter-conditions": [{"filter-operator": "notnull"}]}]}'),
         pg_temp.sr(2, 'include', 's', '%')), 's', 't', '{a}') p;
-- Table settings and invalid documents.
SELECT p->'table-settings-rule-id' AS table_settings
  FROM dms_stream.mapping_preview($${"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include", "object-locator": {"schema-name": "HR", "table-name": "%"}}, {"rule-type": "table-settings", "rule-id": "6", "rule-name": "6", "object-locator": {"schema-name": "HR", "table-name": "SALES"}, "lob-settings": {"mode": "limited"}}]}$$, 'HR', 'SALES', NULL) p;
SELECT dms_stream.mapping_preview('{"rules": []}', 's', 't', NULL);
SELECT dms_stream.mapping_preview(pg_temp.rules(pg_temp.sr(1, 'include', 's', 't')), 's', 't', '{a}', '{INTEGER}');
SELECT dms_stream.mapping_preview(pg_temp.rules(pg_temp.sr(1, 'include', 's', 't')), 's', 't', '{a}', NULL, '{b}');

-- ===================================================================
-- Messages: the DMS documentation's examples, field by field
-- ===================================================================

-- The official data record with all optional metadata (DMS user guide):
-- MySQL source, primary-key partitioning (parallel apply), schema and table
-- in the key, transaction details.
\set guide_ks '{"StreamArn": "arn:aws:kinesis:us-east-1:333333333333:stream/dms-kinesis-target-doc", "IncludeTransactionDetails": true, "IncludePartitionValue": true, "PartitionIncludeSchemaTable": true}'
\set guide_tx '{"transaction-id": 9324410911751, "transaction-record-id": 1, "prev-transaction-id": 9324410910341, "prev-transaction-record-id": 10, "commit-timestamp": "2019-10-31T22:53:55.000000Z", "stream-position": "mysql-bin-changelog.002171:36912271:0:36912333:9324410911751:mysql-bin-changelog.002171:36912209"}'
\set guide_record '{"data": {"id": 100000161, "fname": "val61s", "lname": "val61s", "REGION": "val61s"}, "metadata": {"timestamp": "2019-10-31T22:53:59.721201Z", "record-type": "data", "operation": "insert", "partition-key-type": "primary-key", "partition-key-value": "sbtest.sbtest_x.100000161", "schema-name": "sbtest", "table-name": "sbtest_x", "transaction-id": 9324410911751, "transaction-record-id": 1, "prev-transaction-id": 9324410910341, "prev-transaction-record-id": 10, "commit-timestamp": "2019-10-31T22:53:55.000000Z", "stream-position": "mysql-bin-changelog.002171:36912271:0:36912333:9324410911751:mysql-bin-changelog.002171:36912209"}}'
\pset format unaligned
SELECT partition_key, data
  FROM dms_stream.render_message(:'guide_ks', '{"TargetMetadata": {"ParallelApplyThreads": 4}}', NULL,
         'sbtest', 'sbtest_x', 'insert', '{"id": 100000161, "fname": "val61s", "lname": "val61s", "REGION": "val61s"}',
         '{id}', NULL, :'guide_tx', NULL, '2019-10-31T22:53:59.721201Z');
\pset format aligned
SELECT data::jsonb = :'guide_record'::jsonb AS same_as_guide,
       (SELECT array_agg(k) FROM json_object_keys(data::json) k) AS members,
       (SELECT array_agg(k) FROM json_object_keys((data::json)->'metadata') k) AS metadata_order
  FROM dms_stream.render_message(:'guide_ks', '{"TargetMetadata": {"ParallelApplyThreads": 4}}', NULL,
         'sbtest', 'sbtest_x', 'insert', '{"id": 100000161, "fname": "val61s", "lname": "val61s", "REGION": "val61s"}',
         '{id}', NULL, :'guide_tx', NULL, '2019-10-31T22:53:59.721201Z');
-- The same with an object mapping asking for primary-key partitioning.
SELECT partition_key, data::jsonb = :'guide_record'::jsonb AS same_as_guide
  FROM dms_stream.render_message(:'guide_ks', NULL,
         '{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include", "object-locator": {"schema-name": "sbtest", "table-name": "%"}}, {"rule-type": "object-mapping", "rule-id": "2", "rule-name": "2", "rule-action": "map-record-to-record", "object-locator": {"schema-name": "sbtest", "table-name": "%"}, "mapping-parameters": {"partition-key-type": "primary-key"}}]}',
         'sbtest', 'sbtest_x', 'insert', '{"id": 100000161, "fname": "val61s", "lname": "val61s", "REGION": "val61s"}',
         '{id}', NULL, :'guide_tx', NULL, '2019-10-31T22:53:59.721201Z');

-- The official control record (IncludeControlDetails), its control object
-- given as it is.
\set guide_control '{"table-def": {"columns": {"id": {"type": "WSTRING", "length": 512, "nullable": false}, "fname": {"type": "WSTRING", "length": 255, "nullable": true}, "lname": {"type": "WSTRING", "length": 255, "nullable": true}, "REGION": {"type": "WSTRING", "length": 1000, "nullable": true}}, "primary-key": ["id"], "collation-name": "latin1_swedish_ci"}}'
SELECT partition_key,
       data::jsonb = jsonb_build_object('control', :'guide_control'::jsonb, 'metadata',
           '{"timestamp": "2019-11-21T19:14:22.223792Z", "record-type": "control", "operation": "create-table", "partition-key-type": "task-id", "schema-name": "sbtest", "table-name": "sbtest_t1"}'::jsonb) AS same_as_guide,
       (SELECT array_agg(k) FROM json_object_keys((data::json)->'metadata') k) AS metadata_order
  FROM dms_stream.render_message('{"StreamName": "s", "IncludeControlDetails": true}', NULL, NULL,
         'sbtest', 'sbtest_t1', 'create-table', :'guide_control', at => '2019-11-21T19:14:22.223792Z',
         task_id => 'TASKRESOURCEID');

-- Records observed from DMS with an RDS PostgreSQL source (settings:
-- IncludeTransactionDetails, IncludePartitionValue, IncludeControlDetails,
-- IncludeNullAndEmpty, PartitionIncludeSchemaTable, before image pk-only).
\set crate_ks '{"StreamName": "s", "MessageFormat": "json-unformatted", "IncludeTransactionDetails": true, "IncludePartitionValue": true, "IncludeControlDetails": true, "IncludeNullAndEmpty": true, "PartitionIncludeSchemaTable": true, "IncludeTableAlterOperations": true}'
\set crate_ts '{"BeforeImageSettings": {"EnableBeforeImage": true, "FieldName": "before-image", "ColumnFilter": "pk-only"}}'
\set foo_columns '[{"ColumnName": "id", "ColumnType": "INT4", "ColumnIsPk": true}, {"ColumnName": "name", "ColumnType": "STRING", "ColumnNullable": true}, {"ColumnName": "age", "ColumnType": "INT4", "ColumnNullable": true}, {"ColumnName": "attributes", "ColumnType": "STRING", "ColumnNullable": true}]'
\set task 'serv-res-id-1722195358878-yhru'
-- full load
SELECT partition_key, rtrim(data, E'\n') AS data,
       data::jsonb = $${"data": {"age": 30, "attributes": "{\"foo\": \"bar\"}", "id": 42, "name": "John"},
         "metadata": {"operation": "load", "partition-key-type": "primary-key", "partition-key-value": "public.foo.42",
         "record-type": "data", "schema-name": "public", "table-name": "foo", "timestamp": "2024-07-29T00:57:35.691762Z"}}$$::jsonb AS same_as_dms
  FROM dms_stream.render_message(:'crate_ks', :'crate_ts', NULL, 'public', 'foo', 'load',
         $${"id": 42, "name": "John", "age": 30, "attributes": "{\"foo\": \"bar\"}"}$$,
         at => '2024-07-29T00:57:35.691762Z', columns => :'foo_columns');
-- insert: the first change after the start, no previous transaction
SELECT partition_key, rtrim(data, E'\n') AS data,
       data::jsonb = $${"data": {"age": 31, "attributes": "{\"baz\": \"qux\"}", "id": 46, "name": "Jane"},
         "metadata": {"commit-timestamp": "2024-07-29T00:58:17.974340Z", "operation": "insert",
         "partition-key-type": "schema-table", "record-type": "data", "schema-name": "public",
         "stream-position": "00000002/7C007178.3.00000002/7C007178", "table-name": "foo",
         "timestamp": "2024-07-29T00:58:17.983670Z", "transaction-id": 1139, "transaction-record-id": 1}}$$::jsonb AS same_as_dms
  FROM dms_stream.render_message(:'crate_ks', :'crate_ts', NULL, 'public', 'foo', 'insert',
         $${"id": 46, "name": "Jane", "age": 31, "attributes": "{\"baz\": \"qux\"}"}$$,
         transaction => '{"transaction-id": 1139, "transaction-record-id": 1, "commit-timestamp": "2024-07-29T00:58:17.974340Z", "stream-position": "00000002/7C007178.3.00000002/7C007178"}',
         at => '2024-07-29T00:58:17.983670Z', columns => :'foo_columns');
-- update keeping the key: PostgreSQL logs no old key, the before image is {}
SELECT partition_key, rtrim(data, E'\n') AS data,
       data::jsonb = $${"before-image": {}, "data": {"age": 33, "attributes": "{\"foo\": \"bar\"}", "id": 42, "name": "John"},
         "metadata": {"commit-timestamp": "2024-07-29T00:58:44.886717Z", "operation": "update",
         "partition-key-type": "schema-table", "prev-transaction-id": 1139, "prev-transaction-record-id": 1,
         "record-type": "data", "schema-name": "public", "stream-position": "00000002/7C007328.2.00000002/7C007328",
         "table-name": "foo", "timestamp": "2024-07-29T00:58:44.895275Z", "transaction-id": 1140,
         "transaction-record-id": 1}}$$::jsonb AS same_as_dms
  FROM dms_stream.render_message(:'crate_ks', :'crate_ts', NULL, 'public', 'foo', 'update',
         $${"id": 42, "name": "John", "age": 33, "attributes": "{\"foo\": \"bar\"}"}$$,
         before_image => '{}',
         transaction => '{"transaction-id": 1140, "transaction-record-id": 1, "prev-transaction-id": 1139, "prev-transaction-record-id": 1, "commit-timestamp": "2024-07-29T00:58:44.886717Z", "stream-position": "00000002/7C007328.2.00000002/7C007328"}',
         at => '2024-07-29T00:58:44.895275Z', columns => :'foo_columns');
-- update changing the key 46 -> 45: the old key (and only the key, pk-only)
SELECT partition_key, rtrim(data, E'\n') AS data,
       data::jsonb = $${"before-image": {"id": 46}, "data": {"age": 31, "attributes": "{\"baz\": \"qux\"}", "id": 45, "name": "Jane"},
         "metadata": {"commit-timestamp": "2024-07-29T00:59:07.678294Z", "operation": "update",
         "partition-key-type": "schema-table", "prev-transaction-id": 1140, "prev-transaction-record-id": 1,
         "record-type": "data", "schema-name": "public", "stream-position": "00000002/7C0073F8.2.00000002/7C0073F8",
         "table-name": "foo", "timestamp": "2024-07-29T00:59:07.686557Z", "transaction-id": 1141,
         "transaction-record-id": 1}}$$::jsonb AS same_as_dms
  FROM dms_stream.render_message(:'crate_ks', :'crate_ts', NULL, 'public', 'foo', 'update',
         $${"id": 45, "name": "Jane", "age": 31, "attributes": "{\"baz\": \"qux\"}"}$$,
         before_image => '{"id": 46, "name": null, "age": null, "attributes": null}',
         transaction => '{"transaction-id": 1141, "transaction-record-id": 1, "prev-transaction-id": 1140, "prev-transaction-record-id": 1, "commit-timestamp": "2024-07-29T00:59:07.678294Z", "stream-position": "00000002/7C0073F8.2.00000002/7C0073F8"}',
         at => '2024-07-29T00:59:07.686557Z', columns => :'foo_columns');
-- delete: PostgreSQL logs the key only; the other columns are null
SELECT partition_key, rtrim(data, E'\n') AS data,
       data::jsonb = $${"data": {"age": null, "attributes": null, "id": 45, "name": null},
         "metadata": {"commit-timestamp": "2024-07-29T01:09:25.366257Z", "operation": "delete",
         "partition-key-type": "schema-table", "prev-transaction-id": 1141, "prev-transaction-record-id": 1,
         "record-type": "data", "schema-name": "public", "stream-position": "00000002/840001D8.2.00000002/840001D8",
         "table-name": "foo", "timestamp": "2024-07-29T01:09:25.375525Z", "transaction-id": 1144,
         "transaction-record-id": 1}}$$::jsonb AS same_as_dms
  FROM dms_stream.render_message(:'crate_ks', :'crate_ts', NULL, 'public', 'foo', 'delete',
         '{"id": 45, "name": null, "age": null, "attributes": null}',
         transaction => '{"transaction-id": 1144, "transaction-record-id": 1, "prev-transaction-id": 1141, "prev-transaction-record-id": 1, "commit-timestamp": "2024-07-29T01:09:25.366257Z", "stream-position": "00000002/840001D8.2.00000002/840001D8"}',
         at => '2024-07-29T01:09:25.375525Z', columns => :'foo_columns');
-- create-table: the table definition made from the columns
SELECT partition_key, rtrim(data, E'\n') AS data,
       data::jsonb = $${"control": {"table-def": {"columns": {
           "age": {"nullable": true, "type": "INT32"}, "attributes": {"nullable": true, "type": "STRING"},
           "id": {"nullable": false, "type": "INT32"}, "name": {"nullable": true, "type": "STRING"}},
           "primary-key": ["id"]}},
         "metadata": {"operation": "create-table", "partition-key-type": "task-id",
         "partition-key-value": "serv-res-id-1722195358878-yhru", "record-type": "control",
         "schema-name": "public", "table-name": "foo", "timestamp": "2024-07-29T00:30:47.266581Z"}}$$::jsonb AS same_as_dms
  FROM dms_stream.render_message(:'crate_ks', :'crate_ts', NULL, 'public', 'foo', 'create-table', NULL,
         at => '2024-07-29T00:30:47.266581Z', columns => :'foo_columns', task_id => :'task');
-- drop-table: an empty control object
SELECT partition_key, rtrim(data, E'\n') AS data,
       data::jsonb = $${"control": {}, "metadata": {"operation": "drop-table", "partition-key-type": "task-id",
         "partition-key-value": "serv-res-id-1722195358878-yhru", "record-type": "control",
         "schema-name": "public", "table-name": "foo", "timestamp": "2024-07-29T00:30:47.258815Z"}}$$::jsonb AS same_as_dms
  FROM dms_stream.render_message(:'crate_ks', :'crate_ts', NULL, 'public', 'foo', 'drop-table', NULL,
         at => '2024-07-29T00:30:47.258815Z', columns => :'foo_columns', task_id => :'task');
-- A 2025 capture: control PartitionKey TaskResourceId.schema.table, a load
-- record keyed public.demo.393 with a null attribute.
SELECT partition_key, data::jsonb->'metadata'->>'partition-key-value' AS value
  FROM dms_stream.render_message(:'crate_ks', NULL, NULL, 'public', 'demo', 'create-table', NULL,
         columns => '[{"ColumnName": "id", "ColumnType": "INT4", "ColumnIsPk": true}]', task_id => 'DZ6OKLFYA5BWVG4RYROQUHXU4E');
SELECT partition_key, data::jsonb->'metadata'->>'partition-key-value' AS value, data::jsonb->'data' AS data
  FROM dms_stream.render_message(:'crate_ks', NULL, NULL, 'public', 'demo', 'load', '{"id": 393, "attributes": null}',
         '{id}', at => '2025-06-10T11:28:47Z');
-- MySQL sample: a control record without IncludeControlDetails has only metadata.
SELECT rtrim(data, E'\n') AS data
  FROM dms_stream.render_message('{"StreamName": "s", "MessageFormat": "json-unformatted"}', NULL, NULL,
         '', 'awsdms_apply_exceptions', 'create-table', NULL, at => '2021-02-18T23:09:09.509179Z',
         columns => '[{"ColumnName": "TASK_NAME", "ColumnType": "STRING", "ColumnLength": 128}]', task_id => 'T');

-- ===================================================================
-- Message format: json (pretty, tabs) and json-unformatted (one line + \n)
-- ===================================================================
\set row '{"id": 7, "name": "Tab\\tand \\"quotes\\" and é", "empty": "", "gone": null}'
\pset format unaligned
SELECT data FROM dms_stream.render_message('{"StreamName": "s"}', NULL, NULL, 'app', 'users', 'load', :'row',
         '{id}', at => '2024-01-02T03:04:05.123456+00');
SELECT data FROM dms_stream.render_message('{"StreamName": "s", "MessageFormat": "json-unformatted"}', NULL, NULL,
         'app', 'users', 'load', :'row', '{id}', at => '2024-01-02T03:04:05.123456+00');
SELECT data FROM dms_stream.render_message('{"StreamName": "s", "MessageFormat": "JSON_UNFORMATTED", "IncludeNullAndEmpty": true}', NULL, NULL,
         'app', 'users', 'load', :'row', '{id}', at => '2024-01-02T03:04:05.123456+00');
\pset format aligned
SELECT fmt, right(data, 1) = E'\n' AS ends_with_newline, strpos(data, E'\t') > 0 AS has_tabs,
       array_length(string_to_array(rtrim(data, E'\n'), E'\n'), 1) AS lines
  FROM unnest(ARRAY['json', 'json-unformatted']) fmt,
       dms_stream.render_message(jsonb_build_object('StreamName', 's', 'MessageFormat', fmt), NULL, NULL,
         'app', 'users', 'load', :'row', '{id}');
-- The timestamp is UTC with microseconds whatever the session time zone.
SET timezone = 'America/New_York';
SELECT data::jsonb->'metadata'->>'timestamp' AS ts
  FROM dms_stream.render_message('{"StreamName": "s"}', NULL, NULL, 'app', 'users', 'load', '{"id": 1}',
         at => '2024-01-02 03:04:05-05');
RESET timezone;

-- ===================================================================
-- KinesisSettings flags, each on and off
-- ===================================================================
\set tx '{"transaction-id": 501, "transaction-record-id": 3, "prev-transaction-id": 500, "prev-transaction-record-id": 9, "commit-timestamp": "2024-05-01T10:00:00.5Z", "stream-position": "0/16B3748"}'
-- IncludeTransactionDetails: transaction-id always on changes; the rest with the flag.
SELECT flag, (data::jsonb->'metadata') - 'timestamp' AS metadata
  FROM unnest(ARRAY[false, true]) flag,
       dms_stream.render_message(jsonb_build_object('StreamName', 's', 'IncludeTransactionDetails', flag), NULL, NULL,
         'app', 'users', 'insert', '{"id": 1}', '{id}', transaction => :'tx');
-- ... never on full-load records.
SELECT (data::jsonb->'metadata') - 'timestamp' AS metadata
  FROM dms_stream.render_message('{"StreamName": "s", "IncludeTransactionDetails": true}', NULL, NULL,
         'app', 'users', 'load', '{"id": 1}', '{id}', transaction => :'tx');
-- IncludePartitionValue: shown unless the type is schema-table.
SELECT flag, op, partition_key, data::jsonb->'metadata'->>'partition-key-type' AS type,
       data::jsonb->'metadata'->>'partition-key-value' AS value
  FROM unnest(ARRAY[false, true]) flag, unnest(ARRAY['load', 'insert']) op,
       dms_stream.render_message(jsonb_build_object('StreamName', 's', 'IncludePartitionValue', flag), NULL, NULL,
         'app', 'users', op, '{"id": 1}', '{id}');
-- PartitionIncludeSchemaTable: schema.table before primary key values.
SELECT flag, partition_key, data::jsonb->'metadata'->>'partition-key-value' AS value
  FROM unnest(ARRAY[false, true]) flag,
       dms_stream.render_message(jsonb_build_object('StreamName', 's', 'PartitionIncludeSchemaTable', flag, 'IncludePartitionValue', true),
         NULL, NULL, 'app', 'users', 'load', '{"id": 1}', '{id}');
-- IncludeTableAlterOperations: alter operations sent only with it; create-table always.
SELECT flag, op, (SELECT count(*) FROM dms_stream.render_message(
           jsonb_build_object('StreamName', 's', 'IncludeTableAlterOperations', flag), NULL, NULL,
           'app', 'users', op, NULL, task_id => 'task-1')) AS records
  FROM unnest(ARRAY[false, true]) flag,
       unnest(ARRAY['create-table', 'rename-table', 'drop-table', 'change-columns', 'add-column',
                    'drop-column', 'rename-column', 'column-type-change']) op;
SELECT * FROM dms_stream.render_message('{"StreamName": "s"}', NULL, NULL, 'app', 'users', 'drop-table', NULL, task_id => 'task-1');
-- IncludeControlDetails: the control object only with it.
SELECT flag, data::jsonb - 'metadata' AS control
  FROM unnest(ARRAY[false, true]) flag,
       dms_stream.render_message(jsonb_build_object('StreamName', 's', 'IncludeControlDetails', flag), NULL, NULL,
         'app', 'users', 'create-table', NULL,
         columns => '[{"ColumnName": "id", "ColumnType": "INT8", "ColumnIsPk": true}, {"ColumnName": "code", "ColumnType": "STRING", "ColumnLength": 8, "ColumnNullable": true}, {"ColumnName": "price", "ColumnType": "NUMERIC", "ColumnPrecision": 10, "ColumnScale": 2}, {"ColumnName": "bits", "ColumnType": "BYTE", "ColumnLength": 4}, {"ColumnName": "at", "ColumnType": "DATETIME", "ColumnScale": 3}]',
         task_id => 'task-1');
-- IncludeNullAndEmpty: NULL and empty columns only with it.
SELECT flag, data::jsonb->'data' AS data
  FROM unnest(ARRAY[false, true]) flag,
       dms_stream.render_message(jsonb_build_object('StreamName', 's', 'IncludeNullAndEmpty', flag), NULL, NULL,
         'app', 'users', 'load', '{"id": 1, "a": null, "b": "", "c": "x", "d": 0}', '{id}');
-- NoHexPrefix: BYTE and BLOB values without 0x.
SELECT flag, data::jsonb->'data' AS data
  FROM unnest(ARRAY[false, true]) flag,
       dms_stream.render_message(jsonb_build_object('StreamName', 's', 'NoHexPrefix', flag), NULL, NULL,
         'app', 'files', 'load', '{"id": 1, "b": "0x0A1B", "blob": "0xFF", "s": "0x12"}',
         columns => '[{"ColumnName": "id", "ColumnType": "INT4", "ColumnIsPk": true}, {"ColumnName": "b", "ColumnType": "BYTE", "ColumnLength": 2}, {"ColumnName": "blob", "ColumnType": "BLOB"}, {"ColumnName": "s", "ColumnType": "STRING", "ColumnLength": 10}]');

-- ===================================================================
-- Partition keys
-- ===================================================================
\set pk_cols '[{"ColumnName": "region", "ColumnType": "STRING", "ColumnLength": 10, "ColumnIsPk": true}, {"ColumnName": "id", "ColumnType": "INT4", "ColumnIsPk": true}, {"ColumnName": "customer", "ColumnType": "STRING", "ColumnLength": 20}]'
CREATE FUNCTION pg_temp.om(params jsonb) RETURNS jsonb LANGUAGE sql AS
$$ SELECT pg_temp.rules(pg_temp.sr(1, 'include', '%', '%'),
          jsonb_build_object('rule-type', 'object-mapping', 'rule-id', '2', 'rule-name', 'om',
            'rule-action', 'map-record-to-record', 'object-locator', '{"schema-name": "%", "table-name": "%"}'::jsonb,
            'mapping-parameters', params)) $$;
SELECT params->>'partition-key-type' AS type, op, partition_key,
       data::jsonb->'metadata'->>'partition-key-type' AS metadata_type,
       data::jsonb->'metadata'->>'partition-key-value' AS metadata_value
  FROM (VALUES ('{"partition-key-type": "schema-table"}'::jsonb),
               ('{"partition-key-type": "primary-key"}'),
               ('{"partition-key-type": "attribute-name", "partition-key-name": "customer"}'),
               ('{"partition-key-type": "attribute-name", "partition-key-name": "Label", "attribute-mappings": [{"target-attribute-name": "Label", "attribute-type": "scalar", "attribute-sub-type": "string", "value": "${customer}/${id}"}]}'),
               ('{"partition-key-type": "constant", "partition-key": {"value": "ConstantPartitionKey"}}'),
               ('{"partition-key-type": "transaction-id"}')) v(params),
       unnest(ARRAY['load', 'insert']) op,
       dms_stream.render_message('{"StreamName": "s", "IncludePartitionValue": true}', NULL, pg_temp.om(params),
         'sales', 'orders', op, '{"region": "eu", "id": 17, "customer": "Ada"}',
         transaction => '{"transaction-id": 8812}', columns => :'pk_cols');
-- Composite keys with PartitionIncludeSchemaTable; a NULL key column is
-- empty; a key without any value, or a table without key, falls back to
-- schema-table; so does an unknown partition-key-name.
SELECT v.data AS row_data, partition_key, d.data::jsonb->'metadata'->>'partition-key-type' AS metadata_type
  FROM (VALUES ('{"region": "eu", "id": 17}'::jsonb), ('{"region": null, "id": 17}'), ('{"region": null, "id": null}')) v(data),
       dms_stream.render_message('{"StreamName": "s", "PartitionIncludeSchemaTable": true}', NULL, NULL,
         'sales', 'orders', 'load', v.data, columns => :'pk_cols') d;
SELECT partition_key FROM dms_stream.render_message('{"StreamName": "s"}', NULL, NULL, 'sales', 'orders', 'load', '{"id": 1}');
SELECT partition_key FROM dms_stream.render_message('{"StreamName": "s"}', NULL,
         pg_temp.om('{"partition-key-type": "attribute-name", "partition-key-name": "nope"}'),
         'sales', 'orders', 'load', '{"id": 1}');
-- Keys are cut to 256 characters (Kinesis's limit), at a character.
SELECT length(partition_key) AS chars, right(partition_key, 3) AS ends_with
  FROM dms_stream.render_message('{"StreamName": "s"}', NULL, NULL, 'sales', 'orders', 'load',
         jsonb_build_object('id', repeat('é', 300)), '{id}');

-- ===================================================================
-- Object mapping in messages
-- ===================================================================
-- The guide's Kinesis example: excluded columns gone, attributes made
-- from them, the record keyed by CustomerName, the target table renamed.
\set customer '{"CustomerId": 5, "FirstName": "Randy", "LastName": "Marsh", "HomeAddress": "221B Baker St", "HomePhone": "555-0100", "WorkAddress": "1 Main St", "WorkPhone": "555-0199", "StoreId": "5"}'
\pset format unaligned
SELECT partition_key, data
  FROM dms_stream.render_message('{"StreamName": "s", "IncludePartitionValue": true}', NULL, :'kinesis_guide',
         'Test', 'Customers', 'load', :'customer', '{CustomerId}', at => '2024-01-01T00:00:00Z',
         columns => '[{"ColumnName": "CustomerId", "ColumnType": "INT4", "ColumnIsPk": true}, {"ColumnName": "FirstName", "ColumnType": "STRING", "ColumnLength": 30}, {"ColumnName": "LastName", "ColumnType": "STRING", "ColumnLength": 30}, {"ColumnName": "HomeAddress", "ColumnType": "STRING", "ColumnLength": 100}, {"ColumnName": "HomePhone", "ColumnType": "STRING", "ColumnLength": 20}, {"ColumnName": "WorkAddress", "ColumnType": "STRING", "ColumnLength": 100}, {"ColumnName": "WorkPhone", "ColumnType": "STRING", "ColumnLength": 20}, {"ColumnName": "StoreId", "ColumnType": "STRING", "ColumnLength": 10}]');
\pset format aligned
-- map-record-to-document: the columns under _doc (the guide's example row).
SELECT data::jsonb->'data' AS data
  FROM dms_stream.render_message('{"StreamName": "s"}', NULL,
         '{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include", "object-locator": {"schema-name": "Test", "table-name": "%"}}, {"rule-type": "object-mapping", "rule-id": "2", "rule-name": "2", "rule-action": "map-record-to-document", "object-locator": {"schema-name": "Test", "table-name": "Customers"}, "mapping-parameters": {"exclude-columns": ["CustomerId"], "attribute-mappings": [{"target-attribute-name": "Name", "attribute-type": "scalar", "value": "${FirstName} ${LastName}"}]}}]}',
         'Test', 'Customers', 'load', '{"CustomerId": 1, "FirstName": "Randy", "LastName": "Marsh", "StoreId": "5", "DateOfBirth": "02/29/1988"}');
-- Attribute sub-types: number when the result is a number, json when it is
-- JSON; a template with quotes and a NULL column; an attribute replacing a
-- column of the same name.
SELECT data::jsonb->'data' AS data, rtrim(d.data, E'\n') AS text
  FROM dms_stream.render_message('{"StreamName": "s", "MessageFormat": "json-unformatted"}', NULL, pg_temp.om(
         '{"attribute-mappings": [
            {"target-attribute-name": "total", "attribute-type": "scalar", "attribute-sub-type": "number", "value": "${amount}"},
            {"target-attribute-name": "not_a_number", "attribute-type": "scalar", "attribute-sub-type": "number", "value": "${amount} EUR"},
            {"target-attribute-name": "payload", "attribute-type": "scalar", "attribute-sub-type": "json", "value": "${attrs}"},
            {"target-attribute-name": "quoted", "attribute-type": "scalar", "value": "say \"${note}\" [${missing_value}]"},
            {"target-attribute-name": "note", "attribute-type": "scalar", "value": "note: ${note}"}]}'),
         'app', 'bills', 'load', $${"id": 1, "amount": 12.50, "attrs": "{\"a\": [1, 2], \"b\": {\"c\": null}}", "note": "tab\there", "missing_value": null}$$, at => '2024-01-01T00:00:00Z') d;

-- ===================================================================
-- Before image
-- ===================================================================
\set bi_cols '[{"ColumnName": "id", "ColumnType": "INT4", "ColumnIsPk": true}, {"ColumnName": "name", "ColumnType": "STRING", "ColumnLength": 20, "ColumnNullable": true}, {"ColumnName": "notes", "ColumnType": "CLOB", "ColumnNullable": true}, {"ColumnName": "gone", "ColumnType": "STRING", "ColumnLength": 5, "ColumnNullable": true}]'
SELECT filter, op, (SELECT array_agg(k) FROM json_object_keys(data::json) k) AS members, data::jsonb->'old' AS before_image
  FROM unnest(ARRAY['pk-only', 'non-lob', 'all']) filter, unnest(ARRAY['insert', 'update', 'delete']) op,
       dms_stream.render_message('{"StreamName": "s"}',
         jsonb_build_object('BeforeImageSettings', jsonb_build_object('EnableBeforeImage', true, 'FieldName', 'old', 'ColumnFilter', filter)),
         NULL, 'app', 'notes', op, '{"id": 2, "name": "new", "notes": "long text", "gone": null}',
         before_image => '{"id": 1, "name": "old", "notes": "old text", "gone": null}', columns => :'bi_cols');
-- Disabled (the default), or no before values given.
SELECT data::jsonb ? 'old' AS has_before_image
  FROM dms_stream.render_message('{"StreamName": "s"}', '{"BeforeImageSettings": {"EnableBeforeImage": false, "FieldName": "old"}}',
         NULL, 'app', 'notes', 'update', '{"id": 2}', before_image => '{"id": 1}', columns => :'bi_cols');
SELECT data::jsonb->'old' AS before_image
  FROM dms_stream.render_message('{"StreamName": "s"}', '{"BeforeImageSettings": {"EnableBeforeImage": true, "FieldName": "old", "ColumnFilter": "all"}}',
         NULL, 'app', 'notes', 'update', '{"id": 2}', columns => :'bi_cols');
-- FieldName must not hide a message member.
SELECT * FROM dms_stream.render_message('{"StreamName": "s"}', '{"BeforeImageSettings": {"EnableBeforeImage": true, "FieldName": "data"}}',
         NULL, 'app', 'notes', 'update', '{"id": 2}');
SELECT * FROM dms_stream.render_message('{"StreamName": "s"}', '{"BeforeImageSettings": {"EnableBeforeImage": true}}',
         NULL, 'app', 'notes', 'update', '{"id": 2}');

-- ===================================================================
-- Transformations and the event id in messages
-- ===================================================================
SELECT partition_key, data::jsonb AS message
  FROM dms_stream.render_message('{"StreamName": "s", "IncludePartitionValue": true, "PartitionIncludeSchemaTable": true}', NULL,
         :'trans', 'Test', 'ITEM', 'load', '{"ID": 9, "col1": "dropped", "NAME": "widget", "Pre_b": true}', '{ID}',
         event_id => 'task-1:s3://bucket/hr/ITEM/LOAD00000001.csv:42', at => '2024-01-01T00:00:00Z');
SELECT (SELECT array_agg(k) FROM json_object_keys((data::json)->'metadata') k) AS metadata_order
  FROM dms_stream.render_message('{"StreamName": "s", "IncludeTransactionDetails": true, "IncludePartitionValue": true}', NULL, NULL,
         'app', 'users', 'update', '{"id": 1}', '{id}', transaction => :'tx', event_id => 'e-1');

-- ===================================================================
-- Source filters on rows
-- ===================================================================
-- The guide's example: empid <= 10 or 50..75 or >= 100, as numbers.
SELECT empid, (SELECT count(*) FROM dms_stream.render_message('{"StreamName": "s"}', NULL, :'filter_guide',
           'test', 'employee', 'insert', jsonb_build_object('empid', empid),
           columns => '[{"ColumnName": "empid", "ColumnType": "INT4"}]')) AS sent
  FROM (VALUES (9::numeric), (10), (10.0), (11), (49.99), (50), (75), (75.01), (99), (100), (1e3), (-5)) v(empid);
SELECT * FROM dms_stream.render_message('{"StreamName": "s"}', NULL, :'filter_guide',
         'test', 'employee', 'insert', '{"empid": 20}', columns => '[{"ColumnName": "empid", "ColumnType": "INT4"}]');
-- Filters AND-ed, conditions OR-ed; dates, times, booleans, strings, NULLs.
\set filter_cols '[{"ColumnName": "d", "ColumnType": "DATE", "ColumnNullable": true}, {"ColumnName": "ts", "ColumnType": "DATETIME", "ColumnScale": 6, "ColumnNullable": true}, {"ColumnName": "t", "ColumnType": "TIME", "ColumnNullable": true}, {"ColumnName": "b", "ColumnType": "BOOLEAN", "ColumnNullable": true}, {"ColumnName": "s", "ColumnType": "STRING", "ColumnLength": 10, "ColumnNullable": true}, {"ColumnName": "r", "ColumnType": "REAL8", "ColumnNullable": true}]'
CREATE FUNCTION pg_temp.passes(filters jsonb, row_data jsonb) RETURNS bigint LANGUAGE sql AS
$$ SELECT count(*) FROM dms_stream.render_message('{"StreamName": "s"}', NULL,
       pg_temp.rules(pg_temp.sr(1, 'include', 'f', 't', jsonb_build_object('filters', filters))),
       'f', 't', 'insert', row_data,
       columns => '[{"ColumnName": "d", "ColumnType": "DATE", "ColumnNullable": true}, {"ColumnName": "ts", "ColumnType": "DATETIME", "ColumnScale": 6, "ColumnNullable": true}, {"ColumnName": "t", "ColumnType": "TIME", "ColumnNullable": true}, {"ColumnName": "b", "ColumnType": "BOOLEAN", "ColumnNullable": true}, {"ColumnName": "s", "ColumnType": "STRING", "ColumnLength": 10, "ColumnNullable": true}, {"ColumnName": "r", "ColumnType": "REAL8", "ColumnNullable": true}]') $$;
SET client_min_messages = warning;
SELECT name, pg_temp.passes(filters, row_data) AS sent
  FROM (VALUES
    ('date gte, later',        '[{"filter-type": "source", "column-name": "d", "filter-conditions": [{"filter-operator": "gte", "value": "2024-03-01"}]}]'::jsonb, '{"d": "2024-03-02"}'::jsonb),
    ('date gte, earlier',      '[{"filter-type": "source", "column-name": "d", "filter-conditions": [{"filter-operator": "gte", "value": "2024-03-01"}]}]', '{"d": "2024-02-29"}'),
    ('date eq datetime value', '[{"filter-type": "source", "column-name": "d", "filter-conditions": [{"filter-operator": "eq", "value": "2024-03-01 00:00:00"}]}]', '{"d": "2024-03-01"}'),
    ('datetime between',       '[{"filter-type": "source", "column-name": "ts", "filter-conditions": [{"filter-operator": "between", "start-value": "2024-03-01 10:00:00", "end-value": "2024-03-01 11:00:00"}]}]', '{"ts": "2024-03-01T10:59:59.999999Z"}'),
    ('datetime between, out',  '[{"filter-type": "source", "column-name": "ts", "filter-conditions": [{"filter-operator": "between", "start-value": "2024-03-01 10:00:00", "end-value": "2024-03-01 11:00:00"}]}]', '{"ts": "2024-03-01T11:00:00.000001Z"}'),
    ('datetime lte date',      '[{"filter-type": "source", "column-name": "ts", "filter-conditions": [{"filter-operator": "lte", "value": "2024-03-01"}]}]', '{"ts": "2024-03-01T00:00:00Z"}'),
    ('time lte',               '[{"filter-type": "source", "column-name": "t", "filter-conditions": [{"filter-operator": "ste", "value": "12:00:00"}]}]', '{"t": "09:30:00"}'),
    ('time lte, out',          '[{"filter-type": "source", "column-name": "t", "filter-conditions": [{"filter-operator": "lte", "value": "12:00:00"}]}]', '{"t": "12:00:00.5"}'),
    ('boolean eq true',        '[{"filter-type": "source", "column-name": "b", "filter-conditions": [{"filter-operator": "eq", "value": "TRUE"}]}]', '{"b": true}'),
    ('boolean eq false',       '[{"filter-type": "source", "column-name": "b", "filter-conditions": [{"filter-operator": "eq", "value": "1"}]}]', '{"b": false}'),
    ('string gte bytewise',    '[{"filter-type": "source", "column-name": "s", "filter-conditions": [{"filter-operator": "gte", "value": "b"}]}]', '{"s": "a"}'),
    ('string gte, é > z',      '[{"filter-type": "source", "column-name": "s", "filter-conditions": [{"filter-operator": "gte", "value": "z"}]}]', '{"s": "é"}'),
    ('string eq with escape',  '[{"filter-type": "source", "column-name": "s", "filter-conditions": [{"filter-operator": "eq", "value": "a\"b"}]}]', '{"s": "a\"b"}'),
    ('string digits as text',  '[{"filter-type": "source", "column-name": "s", "filter-conditions": [{"filter-operator": "lte", "value": "10"}]}]', '{"s": "9"}'),
    ('real exponent',          '[{"filter-type": "source", "column-name": "r", "filter-conditions": [{"filter-operator": "gte", "value": "1000"}]}]', '{"r": 1e3}'),
    ('real negative',          '[{"filter-type": "source", "column-name": "r", "filter-conditions": [{"filter-operator": "lte", "value": "-0.5"}]}]', '{"r": -0.75}'),
    ('null',                   '[{"filter-type": "source", "column-name": "s", "filter-conditions": [{"filter-operator": "null"}]}]', '{"s": null}'),
    ('null, missing column',   '[{"filter-type": "source", "column-name": "s", "filter-conditions": [{"filter-operator": "null"}]}]', '{"d": "2024-01-01"}'),
    ('notnull',                '[{"filter-type": "source", "column-name": "s", "filter-conditions": [{"filter-operator": "notnull"}]}]', '{"s": null}'),
    ('noteq null is false',    '[{"filter-type": "source", "column-name": "s", "filter-conditions": [{"filter-operator": "noteq", "value": "x"}]}]', '{"s": null}'),
    ('noteq',                  '[{"filter-type": "source", "column-name": "s", "filter-conditions": [{"filter-operator": "noteq", "value": "x"}]}]', '{"s": "y"}'),
    ('notbetween',             '[{"filter-type": "source", "column-name": "r", "filter-conditions": [{"filter-operator": "notbetween", "start-value": "1", "end-value": "2"}]}]', '{"r": 1.5}'),
    ('notbetween, outside',    '[{"filter-type": "source", "column-name": "r", "filter-conditions": [{"filter-operator": "notbetween", "start-value": "1", "end-value": "2"}]}]', '{"r": 2.5}'),
    ('two filters, both',      '[{"filter-type": "source", "column-name": "r", "filter-conditions": [{"filter-operator": "gte", "value": "1"}]}, {"filter-type": "source", "column-name": "s", "filter-conditions": [{"filter-operator": "eq", "value": "k"}]}]', '{"r": 5, "s": "k"}'),
    ('two filters, one',       '[{"filter-type": "source", "column-name": "r", "filter-conditions": [{"filter-operator": "gte", "value": "1"}]}, {"filter-type": "source", "column-name": "s", "filter-conditions": [{"filter-operator": "eq", "value": "k"}]}]', '{"r": 5, "s": "j"}')
  ) v(name, filters, row_data);
RESET client_min_messages;

-- ===================================================================
-- Inputs are validated as the catalog validates them
-- ===================================================================
SELECT * FROM dms_stream.render_message('{"StreamName": "s", "MessageFormat": "xml"}', NULL, NULL, 'a', 'b', 'load', '{"id": 1}');
SELECT * FROM dms_stream.render_message('{"StreamName": "s", "IncludeNullAndEmpty": "maybe"}', NULL, NULL, 'a', 'b', 'load', '{"id": 1}');
SELECT * FROM dms_stream.render_message(NULL, '{"BeforeImageSettings": {"ColumnFilter": "pk"}}', NULL, 'a', 'b', 'load', '{"id": 1}');
SELECT * FROM dms_stream.render_message(NULL, NULL, '{"rules": [{"rule-type": "selection"}]}', 'a', 'b', 'load', '{"id": 1}');
SELECT * FROM dms_stream.render_message(NULL, NULL, NULL, 'a', 'b', 'upsert', '{"id": 1}');
SELECT * FROM dms_stream.render_message(NULL, NULL, NULL, 'a', 'b', 'load', '[1, 2]');
SELECT * FROM dms_stream.render_message(NULL, NULL, NULL, 'a', 'b', 'load', NULL);
SELECT * FROM dms_stream.render_message(NULL, NULL, NULL, 'a', 'b', 'create-table', NULL);
SELECT * FROM dms_stream.render_message(NULL, NULL, NULL, 'a', 'b', 'insert', '{"id": 1}', transaction => '{"xid": 1}');
SELECT * FROM dms_stream.render_message(NULL, NULL, NULL, 'a', 'b', 'insert', '{"id": 1}', transaction => '{"prev-transaction-id": 1}');
SELECT * FROM dms_stream.render_message(NULL, NULL, NULL, 'a', 'b', 'insert', '{"id": 1}', '{nope}');
SELECT * FROM dms_stream.render_message(NULL, NULL, NULL, 'a', 'b', 'insert', '{"id": 1}', columns => '[{"ColumnName": "id", "ColumnType": "INT"}]');
SELECT * FROM dms_stream.render_message(NULL, NULL, NULL, 'a', 'b', 'insert', '{"id": 1}', columns => '[{"ColumnName": "id", "ColumnType": "INT4", "Nullable": true}]');
-- A table the mappings do not select: no record, and why.
SELECT * FROM dms_stream.render_message(NULL, NULL, :'guide_selection', 'Test', 'DMS_audit', 'load', '{"id": 1}');
-- A table the mappings cannot replicate.
SELECT * FROM dms_stream.render_message(NULL, NULL, :'filter_guide', 'test', 'employee', 'load', '{"id": 1}');
-- Defaults: json, no flags, every table.
SELECT partition_key, data::jsonb AS message
  FROM dms_stream.render_message(NULL, NULL, NULL, 'a', 'b', 'insert', '{"id": 1}', at => '2024-01-01T00:00:00Z');

DROP EXTENSION dms_stream;
