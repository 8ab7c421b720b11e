/*-------------------------------------------------------------------------
 *
 * aws_credentials.h
 *	  The AWS credential chain of dms_stream.
 *
 * Sources, in this order (the first that applies wins):
 *	1. explicit keys stored for the endpoint (dms_stream.endpoint_credential)
 *	2. settings dms_stream.aws_access_key_id / aws_secret_access_key /
 *	   aws_session_token (postgresql.conf, superuser-only)
 *	3. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN in the
 *	   server's environment
 *	4. the shared credentials and config files (AWS_SHARED_CREDENTIALS_FILE,
 *	   AWS_CONFIG_FILE, default ~/.aws/...) with profile dms_stream.aws_profile,
 *	   AWS_PROFILE or "default"
 *	5. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, exchanged
 *	   with STS AssumeRoleWithWebIdentity
 *	6. ECS container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or
 *	   _FULL_URI, with AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE])
 *	7. EC2 instance metadata (IMDSv2: token PUT first), unless
 *	   AWS_EC2_METADATA_DISABLED=true
 * Sources 2-7 are cached per process and refreshed five minutes before they
 * expire.
 *
 * An S3 or Kinesis endpoint with a non-empty ServiceAccessRoleArn signs with
 * the credentials of STS AssumeRole on that role, called with the above as
 * base credentials (ExternalId, session name and duration from the endpoint's
 * ServiceAccessRole* settings; STS URL dms_stream.sts_endpoint_url,
 * AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL or the regional endpoint); cached
 * per role, options and base key id until shortly before they expire.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AWS_CREDENTIALS_H
#define AWS_CREDENTIALS_H

#include "datatype/timestamp.h"

#include "aws_sigv4.h"
#include "endpoint.h"

typedef struct AwsResolvedCredentials
{
	AwsCredentials credentials;
	const char *source;			/* e.g. "endpoint", "environment", "web-identity",
								 * "assume-role:ARN" */
	TimestampTz expires_at;		/* 0 when the credentials do not expire */
} AwsResolvedCredentials;

/* Define the dms_stream.aws_* settings; call from _PG_init. */
extern void aws_credentials_define_settings(void);

/*
 * Credentials for an endpoint, from the first source that applies.  May do
 * network I/O (STS, container or instance metadata).  Errors when no source
 * applies, or when a configured source fails.  The result is palloc'd in
 * CurrentMemoryContext.
 */
extern AwsResolvedCredentials *aws_credentials_resolve(const DmsEndpoint *ep);

#endif							/* AWS_CREDENTIALS_H */
