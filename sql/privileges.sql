-- Privileges: dms_stream_admin changes configuration and reads credentials;
-- other roles read configuration only and never see credentials.
\set SHOW_CONTEXT never
CREATE EXTENSION dms_stream;
CREATE ROLE regress_dms_admin LOGIN IN ROLE dms_stream_admin;
CREATE ROLE regress_dms_reader LOGIN;

SET ROLE regress_dms_admin;
SELECT dms_stream.create_endpoint('kin', 'kinesis', 'target', '{"StreamName": "s"}');
SELECT dms_stream.create_endpoint('s3', 's3', 'target', '{"BucketName": "lake"}');
SELECT dms_stream.set_endpoint_credentials('kin', 'AKIDEXAMPLE', 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY');
SELECT endpoint_name, access_key_id FROM dms_stream.endpoint_credential;
-- Plain SQL on the configuration tables works for the admin, through the same checks.
UPDATE dms_stream.endpoint SET settings = settings || '{"MessageFormat": "json-unformatted"}' WHERE endpoint_name = 'kin';
UPDATE dms_stream.endpoint SET settings = settings || '{"MessageFormat": "xml"}' WHERE endpoint_name = 'kin';
-- Task state is the worker's: not writable directly.
UPDATE dms_stream.task SET status = 'running';
-- Normalised definitions are maintained by the extension only.
INSERT INTO dms_stream.external_table VALUES ('kin', 'a', 'b', 'c', 1);
RESET ROLE;

SET ROLE regress_dms_reader;
SELECT endpoint_name, engine FROM dms_stream.endpoint ORDER BY 1;
SELECT * FROM dms_stream.endpoint_credential;
SELECT * FROM dms_stream.apply_exceptions;
SELECT dms_stream.create_endpoint('kin2', 'kinesis', 'target', '{"StreamName": "s"}');
SELECT dms_stream.alter_endpoint('kin', '{"StreamName": "other"}');
SELECT dms_stream.set_endpoint_credentials('kin', 'AKIDEVIL', 'x');
SELECT dms_stream.drop_endpoint('kin');
UPDATE dms_stream.endpoint SET settings = '{"StreamName": "other"}';
DELETE FROM dms_stream.endpoint;
INSERT INTO dms_stream.delta_load_controller (target_table_name, source_schema, source_table, filter_column, filter_operator, output_s3_prefix, target_endpoint)
VALUES ('x', 'public', 't', 'id', 'notnull', 'p', 's3');
SELECT dms_stream.aws_sigv4_sign('GET', 'http://127.0.0.1/', '{}', NULL, 's3', 'us-east-1', 'AKID', 'SECRET');
-- Validators are open to everybody.
SELECT dms_stream.check_task_settings('{}');

-- Diagnostics that reach any URL (instance metadata too) are superuser only.
SELECT status FROM dms_stream.http_request('GET', 'http://127.0.0.1:1/');
SET dms_stream.csv_max_record_size = '1kB';
RESET ROLE;

-- The admin: keys that break the table's checks are refused without echoing
-- the row; URLs with a password are refused; superuser-only functions and
-- settings stay closed.
SET ROLE regress_dms_admin;
SELECT dms_stream.set_endpoint_credentials('kin', 'AK-ID!', 'wJalrXUtnFEMI/secret-in-the-row');
SELECT dms_stream.set_endpoint_credentials('kin', 'AKIDEXAMPLE', repeat('x', 1025));
INSERT INTO dms_stream.endpoint_credential (endpoint_name, access_key_id, secret_access_key)
VALUES ('s3', 'AKIDEXAMPLE', NULL);
SELECT dms_stream.create_endpoint('kin3', 'kinesis', 'target', '{"StreamName": "s"}', 'http://user:hunter2@127.0.0.1:4567');
SELECT dms_stream.alter_endpoint('kin', endpoint_url => 'https://AKID:secret@kinesis.example.com');
SELECT status FROM dms_stream.http_request('GET', 'http://127.0.0.1:1/');
SELECT * FROM dms_stream.http_request_many('[]');
SELECT * FROM dms_stream.s3_put_generated_object('s3', 'k', 1);
SELECT * FROM dms_stream.s3_object_checksum('s3', 'k');
SELECT * FROM dms_stream.s3_copy_object_streamed('s3', 'k', 'k2');
SET dms_stream.csv_max_record_size = '1kB';
SET dms_stream.http_max_retries = 0;
RESET ROLE;

-- What each role may read in the schema (the README's Privileges section).
SELECT c.relname,
	   has_table_privilege('regress_dms_reader', c.oid, 'SELECT') AS everybody,
	   has_table_privilege('regress_dms_admin', c.oid, 'SELECT') AS admin
  FROM pg_class c
 WHERE c.relnamespace = 'dms_stream'::regnamespace AND c.relkind IN ('r', 'v')
 ORDER BY 1;
-- Each setting's context, as the README's Settings table gives it.
SELECT name, context FROM pg_settings WHERE name LIKE 'dms_stream.%' ORDER BY 1;

-- Nothing the reader tried changed anything.
SELECT endpoint_name, settings FROM dms_stream.endpoint ORDER BY 1;
SELECT endpoint_name, access_key_id FROM dms_stream.endpoint_credential;

DROP EXTENSION dms_stream;
DROP ROLE regress_dms_admin;
DROP ROLE regress_dms_reader;
