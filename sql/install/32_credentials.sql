-- Credential chain diagnostics (src/endpoint_sql.c).

CREATE FUNCTION dms_stream.endpoint_credentials(
	endpoint_name text,
	OUT source text,
	OUT access_key_id text,
	OUT has_session_token boolean,
	OUT expires_at timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'dms_endpoint_credentials'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION dms_stream.endpoint_credentials(text) IS
'which source of the AWS credential chain signs the endpoint''s requests (endpoint, settings, environment, shared-credentials-file:PROFILE, config-file:PROFILE, web-identity, container, instance-metadata), with the access key id and expiry; never the secret';

REVOKE ALL ON FUNCTION dms_stream.endpoint_credentials(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dms_stream.endpoint_credentials(text) TO dms_stream_admin;
