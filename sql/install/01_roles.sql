-- Roles.
--
-- dms_stream_admin may change configuration and read credentials.  Roles are
-- cluster-wide objects, so the role survives DROP EXTENSION and is created only
-- if it does not exist yet.  Grant it to the DBAs who run replication:
--     GRANT dms_stream_admin TO alice;
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'dms_stream_admin') THEN
		CREATE ROLE dms_stream_admin NOLOGIN;
	END IF;
END
$roles$;

GRANT USAGE ON SCHEMA dms_stream TO PUBLIC;
