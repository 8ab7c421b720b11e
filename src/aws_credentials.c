/*-------------------------------------------------------------------------
 *
 * aws_credentials.c
 *	  The AWS credential chain: endpoint keys, settings, environment, shared
 *	  files, web identity (STS), container and instance metadata.
 *
 * Secrets never appear in messages: errors name the source and the file or
 * URL involved, never a key.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <stdlib.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "aws_credentials.h"
#include "dms_json.h"
#include "http.h"

/* Refresh cached credentials this long before they expire. */
#define REFRESH_MARGIN_USEC (5 * 60 * USECS_PER_SEC)

/* Re-read credentials without an expiry (settings, environment, files) this often. */
#define STATIC_TTL_USEC (5 * 60 * USECS_PER_SEC)

/* Default endpoints of the metadata services. */
#define ECS_HOST "http://169.254.170.2"
#define IMDS_HOST "http://169.254.169.254"

static char *aws_access_key_id_setting = NULL;
static char *aws_secret_access_key_setting = NULL;
static char *aws_session_token_setting = NULL;
static char *aws_profile_setting = NULL;
static char *sts_endpoint_url_setting = NULL;

/* Defaults of the endpoint's role settings (dms_stream's own keys). */
#define ROLE_SESSION_NAME_DEFAULT "dms_stream"
#define ROLE_DURATION_DEFAULT 3600

/*
 * Process-wide cache of assumed-role credentials, one entry per role,
 * external id, session name, duration and base access key id.
 */
typedef struct RoleCacheEntry
{
	struct RoleCacheEntry *next;
	char	   *cache_key;
	AwsResolvedCredentials *creds;
	TimestampTz until;
} RoleCacheEntry;

static RoleCacheEntry *role_cache = NULL;

/* Process-wide cache of the chain after the endpoint's own keys. */
static AwsResolvedCredentials *cached = NULL;
static TimestampTz cached_until = 0;

/*
 * aws_credentials_define_settings
 *		The dms_stream.aws_* settings (superuser-only, config file only).
 */
void
aws_credentials_define_settings(void)
{
	DefineCustomStringVariable("dms_stream.aws_access_key_id",
							   "AWS access key id used when an endpoint has no keys of its own.",
							   NULL, &aws_access_key_id_setting, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("dms_stream.aws_secret_access_key",
							   "AWS secret access key that goes with dms_stream.aws_access_key_id.",
							   NULL, &aws_secret_access_key_setting, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("dms_stream.aws_session_token",
							   "AWS session token that goes with dms_stream.aws_access_key_id.",
							   NULL, &aws_session_token_setting, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("dms_stream.aws_profile",
							   "Profile of the shared AWS credentials and config files.",
							   "Empty means AWS_PROFILE from the server's environment, else \"default\".",
							   &aws_profile_setting, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("dms_stream.sts_endpoint_url",
							   "STS endpoint for the AssumeRole calls of endpoints with a ServiceAccessRoleArn.",
							   "Empty means AWS_ENDPOINT_URL_STS from the server's environment, else https://sts.REGION.amazonaws.com.",
							   &sts_endpoint_url_setting, "",
							   PGC_SUSET, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
}

/* Non-empty environment variable or NULL. */
static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return (v && *v) ? v : NULL;
}

/*
 * make_cached
 *		Copy a resolved credential (keys, optional session token, the
 *		source's name and its expiry time, 0 for none) into TopMemoryContext
 *		so that it can stay in the backend's cache; returns the copy.
 */
static AwsResolvedCredentials *
make_cached(const char *source, const char *key, const char *secret,
			const char *token, TimestampTz expires_at)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	AwsResolvedCredentials *r = palloc0(sizeof(AwsResolvedCredentials));

	r->credentials.access_key_id = pstrdup(key);
	r->credentials.secret_access_key = pstrdup(secret);
	r->credentials.session_token = token && *token ? pstrdup(token) : NULL;
	r->source = pstrdup(source);
	r->expires_at = expires_at;
	MemoryContextSwitchTo(old);
	return r;
}

/*
 * free_cached
 *		Free the cached credential and everything it owns, and forget it;
 *		does nothing when nothing is cached.
 */
static void
free_cached(void)
{
	if (cached == NULL)
		return;
	pfree((void *) cached->credentials.access_key_id);
	pfree((void *) cached->credentials.secret_access_key);
	if (cached->credentials.session_token)
		pfree((void *) cached->credentials.session_token);
	pfree((void *) cached->source);
	pfree(cached);
	cached = NULL;
}

/*
 * read_small_file
 *		Read the whole file at path into a palloc'd string; NULL if it does
 *		not exist.  Any other open failure, and a file over 1 MB, is an
 *		ERROR that names the file as what (e.g. "AWS config file").
 */
static char *
read_small_file(const char *path, const char *what)
{
	FILE	   *f = AllocateFile(path, "r");
	StringInfoData buf;
	char		chunk[4096];
	size_t		n;

	if (f == NULL)
	{
		if (errno == ENOENT)
			return NULL;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read %s \"%s\": %m", what, path),
				 errhint("The file must be readable by the operating system user running PostgreSQL.")));
	}
	initStringInfo(&buf);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
	{
		appendBinaryStringInfo(&buf, chunk, n);
		if (buf.len > 1024 * 1024)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("%s \"%s\" is larger than 1 MB", what, path)));
	}
	FreeFile(f);
	return buf.data;
}

/*
 * trim
 *		Strip white space at both ends of s in place: the end is cut with a
 *		NUL and the returned pointer is past the leading spaces.
 */
static char *
trim(char *s)
{
	char	   *end;

	while (isspace((unsigned char) *s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char) end[-1]))
		*--end = '\0';
	return s;
}

/*
 * ini_lookup
 *		Find key in [section] of an INI text; NULL if absent.
 */
static char *
ini_lookup(const char *text, const char *section, const char *key)
{
	char	   *copy = pstrdup(text);
	char	   *line;
	char	   *save = NULL;
	bool		in_section = false;

	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
	{
		char	   *l = trim(line);
		char	   *eq;

		if (*l == '\0' || *l == '#' || *l == ';')
			continue;
		if (*l == '[')
		{
			char	   *close = strchr(l, ']');

			if (close)
			{
				*close = '\0';
				in_section = (strcmp(trim(l + 1), section) == 0);
			}
			continue;
		}
		if (!in_section || (eq = strchr(l, '=')) == NULL)
			continue;
		*eq = '\0';
		if (strcmp(trim(l), key) == 0)
			return pstrdup(trim(eq + 1));
	}
	return NULL;
}

/*
 * home_dir
 *		Home directory of the server's OS user: $HOME, else
 *		/var/lib/postgresql.
 */
static const char *
home_dir(void)
{
	const char *h = env("HOME");

	return h ? h : "/var/lib/postgresql";
}

/*
 * from_shared_files
 *		The profile's keys from the credentials file, then the config file.
 */
static AwsResolvedCredentials *
from_shared_files(StringInfo tried)
{
	const char *profile = (aws_profile_setting && *aws_profile_setting) ? aws_profile_setting :
		(env("AWS_PROFILE") ? env("AWS_PROFILE") : "default");
	const char *cred_path = env("AWS_SHARED_CREDENTIALS_FILE") ? env("AWS_SHARED_CREDENTIALS_FILE") :
		psprintf("%s/.aws/credentials", home_dir());
	const char *config_path = env("AWS_CONFIG_FILE") ? env("AWS_CONFIG_FILE") :
		psprintf("%s/.aws/config", home_dir());
	char	   *text;
	const char *section;
	int			i;

	for (i = 0; i < 2; i++)
	{
		const char *path = i == 0 ? cred_path : config_path;
		char	   *key,
				   *secret;

		text = read_small_file(path, i == 0 ? "AWS shared credentials file" : "AWS config file");
		if (text == NULL)
		{
			appendStringInfo(tried, "; %s: no such file", path);
			continue;
		}
		section = (i == 0 || strcmp(profile, "default") == 0) ? profile : psprintf("profile %s", profile);
		key = ini_lookup(text, section, "aws_access_key_id");
		secret = ini_lookup(text, section, "aws_secret_access_key");
		if (key && secret)
			return make_cached(psprintf("%s:%s", i == 0 ? "shared-credentials-file" : "config-file", profile),
							   key, secret, ini_lookup(text, section, "aws_session_token"), 0);
		if (key || secret)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("profile \"%s\" in \"%s\" has only one of aws_access_key_id and aws_secret_access_key", profile, path),
					 errhint("Give both keys in the profile, or remove it.")));
		appendStringInfo(tried, "; %s: no keys in profile \"%s\"", path, profile);
	}
	return NULL;
}

/*
 * parse_expiration
 *		Parse an ISO 8601 time such as 2026-11-21T16:00:00Z with timestamptz
 *		input; an unreadable value is an ERROR naming source.
 */
static TimestampTz
parse_expiration(const char *s, const char *source)
{
	TimestampTz result = 0;

	PG_TRY();
	{
		result = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(s),
														 ObjectIdGetDatum(InvalidOid),
														 Int32GetDatum(-1)));
	}
	PG_CATCH();
	{
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("%s returned an unreadable expiration time \"%s\"", source, s)));
	}
	PG_END_TRY();
	return result;
}

/*
 * xml_find
 *		Text of the first element named name (any namespace) in a
 *		depth-first search of node, its siblings and their children;
 *		palloc'd, NULL if there is none.
 */
static char *
xml_find(xmlNode *node, const char *name)
{
	for (; node; node = node->next)
	{
		if (node->type == XML_ELEMENT_NODE && strcmp((const char *) node->name, name) == 0)
		{
			xmlChar    *content = xmlNodeGetContent(node);
			char	   *result = pstrdup((const char *) content);

			xmlFree(content);
			return result;
		}
		if (node->children)
		{
			char	   *found = xml_find(node->children, name);

			if (found)
				return found;
		}
	}
	return NULL;
}

/*
 * credentials_request_failed
 *		Raise an ERROR for a failed credentials request of source, with the
 *		request and response details (dms_http_raise_error).
 */
static void
credentials_request_failed(const char *source, const DmsHttpRequest *req,
						   const DmsHttpResponse *resp)
{
	dms_http_raise_error(ERROR, psprintf("%s credentials request", source), req, resp);
}

/*
 * sts_credentials
 *		The temporary credentials in a successful STS answer to action
 *		(AssumeRole, AssumeRoleWithWebIdentity), cached as source.
 */
static AwsResolvedCredentials *
sts_credentials(const char *action, const char *source, const char *url, const char *role,
				const DmsHttpResponse *resp)
{
	xmlDoc	   *doc;
	char	   *key,
			   *secret,
			   *token,
			   *expiration;

	doc = xmlReadMemory(resp->body, (int) resp->body_len, NULL, NULL,
						XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_XML_DOCUMENT),
				 errmsg("STS %s returned a response that is not XML", action),
				 errdetail("URL %s, HTTP status %ld, role %s.", url, resp->status, role)));
	key = xml_find(xmlDocGetRootElement(doc), "AccessKeyId");
	secret = xml_find(xmlDocGetRootElement(doc), "SecretAccessKey");
	token = xml_find(xmlDocGetRootElement(doc), "SessionToken");
	expiration = xml_find(xmlDocGetRootElement(doc), "Expiration");
	xmlFreeDoc(doc);
	if (!key || !secret || !token)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_XML_DOCUMENT),
				 errmsg("STS %s returned no credentials", action),
				 errdetail("URL %s, role %s.", url, role)));
	return make_cached(source, key, secret, token,
					   expiration ? parse_expiration(expiration, psprintf("STS %s", action)) : 0);
}

/*
 * from_web_identity
 *		STS AssumeRoleWithWebIdentity with the token file's contents.
 */
static AwsResolvedCredentials *
from_web_identity(StringInfo tried)
{
	const char *token_file = env("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *role_arn = env("AWS_ROLE_ARN");
	const char *session = env("AWS_ROLE_SESSION_NAME") ? env("AWS_ROLE_SESSION_NAME") : "dms_stream";
	const char *region = env("AWS_REGION") ? env("AWS_REGION") :
		(env("AWS_DEFAULT_REGION") ? env("AWS_DEFAULT_REGION") : "us-east-1");
	const char *sts_url;
	char	   *token;
	StringInfoData body;
	AwsHeader	headers[1] = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
	DmsHttpRequest req = {0};
	DmsHttpResponse *resp;

	if (token_file == NULL || role_arn == NULL)
	{
		appendStringInfoString(tried, "; web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN not both set");
		return NULL;
	}
	token = read_small_file(token_file, "web identity token file");
	if (token == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("web identity token file \"%s\" does not exist", token_file),
				 errhint("Check AWS_WEB_IDENTITY_TOKEN_FILE in the server's environment.")));
	token = trim(token);

	sts_url = env("AWS_ENDPOINT_URL_STS") ? env("AWS_ENDPOINT_URL_STS") :
		(env("AWS_ENDPOINT_URL") ? env("AWS_ENDPOINT_URL") : psprintf("https://sts.%s.amazonaws.com", region));
	if (sts_url[strlen(sts_url) - 1] != '/')
		sts_url = psprintf("%s/", sts_url);

	initStringInfo(&body);
	appendStringInfoString(&body, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=");
	aws_uri_encode_append(&body, role_arn, strlen(role_arn), true);
	appendStringInfoString(&body, "&RoleSessionName=");
	aws_uri_encode_append(&body, session, strlen(session), true);
	appendStringInfoString(&body, "&WebIdentityToken=");
	aws_uri_encode_append(&body, token, strlen(token), true);

	req.method = "POST";
	req.url = sts_url;
	req.headers = headers;
	req.nheaders = 1;
	req.body = body.data;
	req.body_len = body.len;
	req.max_retries = -1;
	resp = dms_http_request(&req);
	if (!resp->ok)
		credentials_request_failed("STS AssumeRoleWithWebIdentity", &req, resp);

	return sts_credentials("AssumeRoleWithWebIdentity", "web-identity", sts_url, role_arn, resp);
}

/*
 * parse_json_credentials
 *		{"AccessKeyId", "SecretAccessKey", "Token", "Expiration"} as served by
 *		the container and instance metadata services.
 */
static AwsResolvedCredentials *
parse_json_credentials(const char *source, const char *url, const DmsHttpResponse *resp)
{
	json_error_t err;
	json_t	   *root = json_loadb(resp->body, resp->body_len, 0, &err);
	json_t	   *key,
			   *secret,
			   *token,
			   *expiration;

	if (root == NULL || !json_is_object(root))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_JSON_TEXT),
				 errmsg("%s credentials at %s are not a JSON object", source, url)));
	key = json_object_get(root, "AccessKeyId");
	secret = json_object_get(root, "SecretAccessKey");
	token = json_object_get(root, "Token");
	expiration = json_object_get(root, "Expiration");
	if (!json_is_string(key) || !json_is_string(secret))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s credentials at %s have no AccessKeyId and SecretAccessKey", source, url)));
	return make_cached(source, json_string_value(key), json_string_value(secret),
					   json_is_string(token) ? json_string_value(token) : NULL,
					   json_is_string(expiration) ? parse_expiration(json_string_value(expiration), source) : 0);
}

/*
 * from_container
 *		ECS task role credentials.
 */
static AwsResolvedCredentials *
from_container(StringInfo tried)
{
	const char *relative = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *url;
	const char *auth = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	const char *auth_file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	AwsHeader	headers[1];
	DmsHttpRequest req = {0};
	DmsHttpResponse *resp;

	if (relative == NULL && full == NULL)
	{
		appendStringInfoString(tried, "; container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI not set");
		return NULL;
	}
	url = relative ? psprintf("%s%s", ECS_HOST, relative) : full;
	if (auth_file)
	{
		char	   *t = read_small_file(auth_file, "container authorization token file");

		if (t == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FILE),
					 errmsg("container authorization token file \"%s\" does not exist", auth_file)));
		auth = trim(t);
	}

	req.method = "GET";
	req.url = url;
	if (auth)
	{
		headers[0].name = "Authorization";
		headers[0].value = auth;
		req.headers = headers;
		req.nheaders = 1;
	}
	req.connect_timeout_ms = 2000;
	req.timeout_ms = 5000;
	req.max_retries = 2;
	resp = dms_http_request(&req);
	if (!resp->ok)
		credentials_request_failed("container", &req, resp);
	return parse_json_credentials("container", url, resp);
}

/*
 * from_instance_metadata
 *		EC2 IMDSv2: PUT a session token, then read the role's credentials.
 *		Returns NULL when the service cannot be reached (not on EC2).
 */
static AwsResolvedCredentials *
from_instance_metadata(StringInfo tried)
{
	const char *disabled = env("AWS_EC2_METADATA_DISABLED");
	const char *base = env("AWS_EC2_METADATA_SERVICE_ENDPOINT") ? env("AWS_EC2_METADATA_SERVICE_ENDPOINT") : IMDS_HOST;
	AwsHeader	ttl[1] = {{"X-aws-ec2-metadata-token-ttl-seconds", "21600"}};
	AwsHeader	tok[1];
	DmsHttpRequest req = {0};
	DmsHttpResponse *resp;
	char	   *role;
	char	   *nl;
	const char *url;

	if (disabled && pg_strcasecmp(disabled, "true") == 0)
	{
		appendStringInfoString(tried, "; instance metadata: disabled by AWS_EC2_METADATA_DISABLED");
		return NULL;
	}
	if (base[strlen(base) - 1] == '/')
		base = pnstrdup(base, strlen(base) - 1);

	req.method = "PUT";
	req.url = psprintf("%s/latest/api/token", base);
	req.headers = ttl;
	req.nheaders = 1;
	req.connect_timeout_ms = 1000;
	req.timeout_ms = 2000;
	req.max_retries = 1;
	resp = dms_http_request(&req);
	if (resp->status == 0)
	{
		appendStringInfo(tried, "; instance metadata: %s not reachable", base);
		return NULL;
	}
	if (!resp->ok)
		credentials_request_failed("instance metadata (IMDSv2 token)", &req, resp);

	tok[0].name = "X-aws-ec2-metadata-token";
	tok[0].value = pstrdup(trim(resp->body));
	req.method = "GET";
	req.headers = tok;
	req.url = psprintf("%s/latest/meta-data/iam/security-credentials/", base);
	resp = dms_http_request(&req);
	if (resp->status == 404)
	{
		appendStringInfo(tried, "; instance metadata: no IAM role attached");
		return NULL;
	}
	if (!resp->ok)
		credentials_request_failed("instance metadata (role)", &req, resp);
	role = trim(resp->body);
	if ((nl = strchr(role, '\n')) != NULL)
		*nl = '\0';
	if (*role == '\0')
	{
		appendStringInfo(tried, "; instance metadata: no IAM role attached");
		return NULL;
	}

	url = psprintf("%s/latest/meta-data/iam/security-credentials/%s", base, aws_uri_encode(role, true));
	req.url = url;
	resp = dms_http_request(&req);
	if (!resp->ok)
		credentials_request_failed("instance metadata (credentials)", &req, resp);
	return parse_json_credentials("instance-metadata", url, resp);
}

/*
 * resolve_chain
 *		Sources 2-7, first match wins.
 */
static AwsResolvedCredentials *
resolve_chain(StringInfo tried)
{
	AwsResolvedCredentials *r;

	if (aws_access_key_id_setting && *aws_access_key_id_setting)
	{
		if (!aws_secret_access_key_setting || !*aws_secret_access_key_setting)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("dms_stream.aws_access_key_id is set but dms_stream.aws_secret_access_key is not"),
					 errhint("Set both in postgresql.conf and reload.")));
		return make_cached("settings", aws_access_key_id_setting, aws_secret_access_key_setting,
						   aws_session_token_setting, 0);
	}
	appendStringInfoString(tried, "settings: dms_stream.aws_access_key_id not set");

	if (env("AWS_ACCESS_KEY_ID"))
	{
		if (!env("AWS_SECRET_ACCESS_KEY"))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("AWS_ACCESS_KEY_ID is set in the server's environment but AWS_SECRET_ACCESS_KEY is not")));
		return make_cached("environment", env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"),
						   env("AWS_SESSION_TOKEN"), 0);
	}
	appendStringInfoString(tried, "; environment: AWS_ACCESS_KEY_ID not set");

	if ((r = from_shared_files(tried)) != NULL)
		return r;
	if ((r = from_web_identity(tried)) != NULL)
		return r;
	if ((r = from_container(tried)) != NULL)
		return r;
	return from_instance_metadata(tried);
}

/*
 * resolve_base
 *		The endpoint's own keys, else the chain (sources 2-7, cached).
 */
static AwsResolvedCredentials *
resolve_base(const DmsEndpoint *ep)
{
	AwsResolvedCredentials *result = palloc0(sizeof(AwsResolvedCredentials));
	TimestampTz now = GetCurrentTimestamp();

	if (ep->has_keys)
	{
		result->credentials = ep->keys;
		result->source = "endpoint";
		return result;
	}

	if (cached == NULL || now >= cached_until)
	{
		StringInfoData tried;
		AwsResolvedCredentials *fresh;

		initStringInfo(&tried);
		fresh = resolve_chain(&tried);
		if (fresh == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					 errmsg("no AWS credentials found for endpoint \"%s\"", ep->name),
					 errdetail("Tried: endpoint keys: none stored; %s.", tried.data),
					 errhint("Store keys with dms_stream.set_endpoint_credentials(), set dms_stream.aws_access_key_id and dms_stream.aws_secret_access_key in postgresql.conf, or give the server a profile, web identity, container or instance role.")));
		free_cached();
		cached = fresh;
		if (cached->expires_at != 0)
			cached_until = cached->expires_at - REFRESH_MARGIN_USEC;
		else
			cached_until = now + STATIC_TTL_USEC;
	}

	result->credentials.access_key_id = pstrdup(cached->credentials.access_key_id);
	result->credentials.secret_access_key = pstrdup(cached->credentials.secret_access_key);
	result->credentials.session_token = cached->credentials.session_token ?
		pstrdup(cached->credentials.session_token) : NULL;
	result->source = pstrdup(cached->source);
	result->expires_at = cached->expires_at;
	return result;
}

/*
 * sts_url_for
 *		The STS endpoint: dms_stream.sts_endpoint_url, AWS_ENDPOINT_URL_STS,
 *		AWS_ENDPOINT_URL, else the regional endpoint; always ending in "/".
 */
static const char *
sts_url_for(const char *region)
{
	const char *url;

	if (sts_endpoint_url_setting && *sts_endpoint_url_setting)
		url = sts_endpoint_url_setting;
	else if (env("AWS_ENDPOINT_URL_STS"))
		url = env("AWS_ENDPOINT_URL_STS");
	else if (env("AWS_ENDPOINT_URL"))
		url = env("AWS_ENDPOINT_URL");
	else
		url = psprintf("https://sts.%s.amazonaws.com", region);
	if (url[strlen(url) - 1] != '/')
		url = psprintf("%s/", url);
	return url;
}

/*
 * assume_role_failed
 *		ERROR for an AssumeRole call that STS refused: the role, STS's error
 *		in DETAIL, and what to check in the HINT.  Transport failures and
 *		server errors go through dms_http_raise_error.
 */
static void
assume_role_failed(const DmsEndpoint *ep, const char *role, const AwsResolvedCredentials *base,
				   const DmsHttpRequest *req, const DmsHttpResponse *resp)
{
	const char *code = resp->error_code ? resp->error_code : "";

	if (resp->status < 400 || resp->status >= 500)
		dms_http_raise_error(ERROR, psprintf("STS AssumeRole of role %s for endpoint \"%s\"", role, ep->name),
							 req, resp);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("could not assume role %s for endpoint \"%s\"", role, ep->name),
			 errdetail("STS AssumeRole at %s answered HTTP %ld %s: %s (base credentials: %s, access key id %s).",
					   req->url, resp->status, *code ? code : "(no error code)",
					   resp->error_message ? resp->error_message : "(no message)",
					   base->source, base->credentials.access_key_id),
			 errhint("%s",
					 strcmp(code, "AccessDenied") == 0 ?
					 "The role's trust policy must allow the base credentials' principal to call sts:AssumeRole (with the endpoint's ServiceAccessRoleExternalId if it has an sts:ExternalId condition), and that principal's own policy must allow sts:AssumeRole on the role." :
					 "Check ServiceAccessRoleArn and the ServiceAccessRole* settings of the endpoint, and the base credentials (dms_stream.endpoint_credentials() without the role).")));
}

/*
 * assume_role
 *		STS AssumeRole of role with the base credentials, signed SigV4
 *		(service sts, the endpoint's region); returns the temporary
 *		credentials in TopMemoryContext.
 */
static AwsResolvedCredentials *
assume_role(const DmsEndpoint *ep, const AwsResolvedCredentials *base, const char *role,
			const char *external_id, const char *session, int duration)
{
	const char *region = ep->region ? ep->region : "us-east-1";
	StringInfoData body;
	AwsHeader	headers[1] = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
	DmsHttpRequest req = {0};
	DmsHttpResponse *resp;

	initStringInfo(&body);
	appendStringInfo(&body, "Action=AssumeRole&Version=2011-06-15&DurationSeconds=%d&RoleArn=", duration);
	aws_uri_encode_append(&body, role, strlen(role), true);
	appendStringInfoString(&body, "&RoleSessionName=");
	aws_uri_encode_append(&body, session, strlen(session), true);
	if (external_id)
	{
		appendStringInfoString(&body, "&ExternalId=");
		aws_uri_encode_append(&body, external_id, strlen(external_id), true);
	}

	req.method = "POST";
	req.url = sts_url_for(region);
	req.headers = headers;
	req.nheaders = 1;
	req.body = body.data;
	req.body_len = body.len;
	req.credentials = &base->credentials;
	req.service = "sts";
	req.region = region;
	req.max_retries = -1;
	resp = dms_http_request(&req);
	if (!resp->ok)
		assume_role_failed(ep, role, base, &req, resp);

	return sts_credentials("AssumeRole", psprintf("assume-role:%s", role), req.url, role, resp);
}

/*
 * role_setting_int
 *		An integer setting of the endpoint (validated when it was stored),
 *		or dflt when it is absent.
 */
static int
role_setting_int(const DmsEndpoint *ep, const char *key, int dflt)
{
	json_t	   *v = ep->settings ? json_object_get(ep->settings, key) : NULL;

	if (v && json_is_integer(v))
		return (int) json_integer_value(v);
	if (v && json_is_string(v))
		return atoi(json_string_value(v));
	return dflt;
}

/*
 * resolve_role
 *		The credentials of the endpoint's ServiceAccessRoleArn, assumed with
 *		base and cached per role, external id, session name, duration and
 *		base key id until shortly before they expire (five minutes, or half
 *		their lifetime when that is shorter).
 */
static AwsResolvedCredentials *
resolve_role(const DmsEndpoint *ep, const AwsResolvedCredentials *base, const char *role)
{
	const char *external_id = dms_endpoint_setting(ep, "ServiceAccessRoleExternalId");
	const char *session = dms_endpoint_setting(ep, "ServiceAccessRoleSessionName");
	int			duration = role_setting_int(ep, "ServiceAccessRoleDurationSeconds", ROLE_DURATION_DEFAULT);
	TimestampTz now = GetCurrentTimestamp();
	char	   *cache_key;
	RoleCacheEntry *e;
	AwsResolvedCredentials *fresh;
	AwsResolvedCredentials *result;

	if (external_id && *external_id == '\0')
		external_id = NULL;
	if (session == NULL || *session == '\0')
		session = ROLE_SESSION_NAME_DEFAULT;
	cache_key = psprintf("%s\n%s\n%s\n%d\n%s", role, external_id ? external_id : "", session,
						 duration, base->credentials.access_key_id);
	for (e = role_cache; e; e = e->next)
		if (strcmp(e->cache_key, cache_key) == 0)
			break;
	if (e == NULL || now >= e->until)
	{
		fresh = assume_role(ep, base, role, external_id, session, duration);
		if (e == NULL)
		{
			e = MemoryContextAllocZero(TopMemoryContext, sizeof(RoleCacheEntry));
			e->cache_key = MemoryContextStrdup(TopMemoryContext, cache_key);
			e->next = role_cache;
			role_cache = e;
		}
		else
		{
			pfree((void *) e->creds->credentials.access_key_id);
			pfree((void *) e->creds->credentials.secret_access_key);
			pfree((void *) e->creds->credentials.session_token);
			pfree((void *) e->creds->source);
			pfree(e->creds);
		}
		e->creds = fresh;
		if (fresh->expires_at == 0)
			e->until = now + STATIC_TTL_USEC;
		else
			e->until = fresh->expires_at - Min(REFRESH_MARGIN_USEC, (fresh->expires_at - now) / 2);
	}

	result = palloc0(sizeof(AwsResolvedCredentials));
	result->credentials.access_key_id = pstrdup(e->creds->credentials.access_key_id);
	result->credentials.secret_access_key = pstrdup(e->creds->credentials.secret_access_key);
	result->credentials.session_token = pstrdup(e->creds->credentials.session_token);
	result->source = pstrdup(e->creds->source);
	result->expires_at = e->creds->expires_at;
	return result;
}

/*
 * aws_credentials_resolve
 *		The credentials to sign an endpoint's requests with: the base
 *		credentials, or those of the endpoint's ServiceAccessRoleArn (S3 and
 *		Kinesis endpoints) assumed with them.
 */
AwsResolvedCredentials *
aws_credentials_resolve(const DmsEndpoint *ep)
{
	AwsResolvedCredentials *base = resolve_base(ep);
	const char *role = NULL;

	if (strcmp(ep->engine, "s3") == 0 || strcmp(ep->engine, "kinesis") == 0)
		role = dms_endpoint_setting(ep, "ServiceAccessRoleArn");
	if (role == NULL || *role == '\0')
		return base;
	return resolve_role(ep, base, role);
}
