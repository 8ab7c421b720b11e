/*-------------------------------------------------------------------------
 *
 * aws_sql.c
 *	  SQL-callable wrappers around the AWS helpers (declared in
 *	  sql/install/30_aws.sql, executable by dms_stream_admin only).
 *
 * The HTTP diagnostics (http_request, http_request_many) run requests
 * through src/http.c; the tests use them for retries, timeouts and cancels.
 *
 * dms_stream.aws_sigv4_sign returns the headers dms_stream would add to a
 * request.  It is a diagnostic: when an endpoint rejects our requests with
 * SignatureDoesNotMatch, a DBA can sign the same request with another SDK
 * and compare; aws_sigv4_explain adds the canonical request and string to
 * sign, which S3 also returns in its error body.  The test suite checks the
 * signer against botocore through these functions.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "aws_sigv4.h"
#include "http.h"

PG_FUNCTION_INFO_V1(dms_aws_sigv4_sign);
PG_FUNCTION_INFO_V1(dms_aws_sigv4_explain);
PG_FUNCTION_INFO_V1(dms_aws_uri_encode);
PG_FUNCTION_INFO_V1(dms_http_request_sql);
PG_FUNCTION_INFO_V1(dms_http_request_many_sql);

/* Argument positions shared by aws_sigv4_sign and aws_sigv4_explain. */
enum
{
	ARG_METHOD = 0,
	ARG_URL,
	ARG_HEADERS,
	ARG_PAYLOAD,
	ARG_SERVICE,
	ARG_REGION,
	ARG_ACCESS_KEY_ID,
	ARG_SECRET_ACCESS_KEY,
	ARG_SESSION_TOKEN,
	ARG_SIGNING_TIME,
	ARG_PAYLOAD_HASH
};

/*
 * sql_required_text
 *		Fetch a text argument that must not be NULL, as a C string.
 */
static char *
sql_required_text(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", argname),
				 errhint("Only headers, payload, session_token, signing_time "
						 "and payload_hash may be NULL.")));
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/*
 * sql_jsonb_type_name
 *		Name of a JSON value's type, for error details.
 */
static const char *
sql_jsonb_type_name(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "a string";
		case jbvNumeric:
			return "a number";
		case jbvBool:
			return "a boolean";
		case jbvArray:
			return "an array";
		case jbvObject:
			return "an object";
		case jbvBinary:
			return JsonContainerIsArray(v->val.binary.data) ? "an array" :
				JsonContainerIsObject(v->val.binary.data) ? "an object" : "a scalar";
		default:
			return "an unknown type";
	}
}

/*
 * sql_headers_from_jsonb
 *		Turn a JSON object {"Name": "value", ...} into an AwsHeader array.
 */
static AwsHeader *
sql_headers_from_jsonb(Jsonb *jb, int *nheaders)
{
	AwsHeader  *headers;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *name = NULL;
	int			n = 0;

	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("headers must be a JSON object"),
				 errdetail("The value given is %s.",
						   JB_ROOT_IS_SCALAR(jb) ? "a scalar" : "an array"),
				 errhint("Pass the request headers as "
						 "'{\"Content-Type\": \"application/x-amz-json-1.1\"}', "
						 "or NULL for none.")));

	headers = palloc0(sizeof(AwsHeader) * (JB_ROOT_COUNT(jb) + 1));
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			name = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
		{
			if (v.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("value of header \"%s\" must be a JSON string", name),
						 errdetail("The value given is %s.", sql_jsonb_type_name(&v)),
						 errhint("Quote header values, e.g. {\"Content-Length\": \"42\"}; "
								 "join repeated headers with commas.")));
			headers[n].name = name;
			headers[n].value = pnstrdup(v.val.string.val, v.val.string.len);
			n++;
		}
	}
	*nheaders = n;
	return headers;
}

/*
 * sql_sign_from_args
 *		Build the signing request from the SQL arguments and sign it.
 */
static void
sql_sign_from_args(FunctionCallInfo fcinfo, AwsSigV4Signature *sig)
{
	AwsSigV4Request req;
	AwsCredentials cred;

	memset(&req, 0, sizeof(req));
	memset(&cred, 0, sizeof(cred));

	req.method = sql_required_text(fcinfo, ARG_METHOD, "method");
	req.url = sql_required_text(fcinfo, ARG_URL, "url");
	req.service = sql_required_text(fcinfo, ARG_SERVICE, "service");
	req.region = sql_required_text(fcinfo, ARG_REGION, "region");
	cred.access_key_id = sql_required_text(fcinfo, ARG_ACCESS_KEY_ID, "access_key_id");
	cred.secret_access_key = sql_required_text(fcinfo, ARG_SECRET_ACCESS_KEY,
											   "secret_access_key");
	if (!PG_ARGISNULL(ARG_SESSION_TOKEN))
		cred.session_token = text_to_cstring(PG_GETARG_TEXT_PP(ARG_SESSION_TOKEN));
	req.credentials = &cred;

	if (!PG_ARGISNULL(ARG_HEADERS))
		req.headers = sql_headers_from_jsonb(PG_GETARG_JSONB_P(ARG_HEADERS),
											 &req.nheaders);

	if (!PG_ARGISNULL(ARG_PAYLOAD))
	{
		bytea	   *payload = PG_GETARG_BYTEA_PP(ARG_PAYLOAD);

		req.payload = VARDATA_ANY(payload);
		req.payload_len = VARSIZE_ANY_EXHDR(payload);
	}

	req.signing_time = PG_ARGISNULL(ARG_SIGNING_TIME) ?
		GetCurrentTimestamp() : PG_GETARG_TIMESTAMPTZ(ARG_SIGNING_TIME);

	if (!PG_ARGISNULL(ARG_PAYLOAD_HASH))
		req.payload_hash = text_to_cstring(PG_GETARG_TEXT_PP(ARG_PAYLOAD_HASH));

	aws_sigv4_sign(&req, sig);
}

/*
 * sql_push_string
 *		Add "key": "value" to the JSON object being built.
 */
static void
sql_push_string(JsonbParseState **state, const char *key, const char *value)
{
	JsonbValue	k;
	JsonbValue	v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(state, WJB_KEY, &k);

	v.type = jbvString;
	v.val.string.val = (char *) value;
	v.val.string.len = strlen(value);
	pushJsonbValue(state, WJB_VALUE, &v);
}

/*
 * sql_push_headers
 *		Add the headers the signer would add as one JSON object.
 */
static JsonbValue *
sql_push_headers(JsonbParseState **state, const AwsSigV4Signature *sig)
{
	int			i;

	pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i < sig->nheaders; i++)
		sql_push_string(state, sig->headers[i].name, sig->headers[i].value);
	return pushJsonbValue(state, WJB_END_OBJECT, NULL);
}

/*
 * dms_aws_sigv4_sign
 *		SQL: aws_sigv4_sign(...) returns the SigV4 headers as a JSON object.
 */
Datum
dms_aws_sigv4_sign(PG_FUNCTION_ARGS)
{
	AwsSigV4Signature sig;
	JsonbParseState *state = NULL;
	JsonbValue *res;

	sql_sign_from_args(fcinfo, &sig);
	res = sql_push_headers(&state, &sig);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
}

/*
 * dms_aws_sigv4_explain
 *		SQL: aws_sigv4_explain(...) returns the headers plus the canonical
 *		request, string to sign, signed headers and signature.
 */
Datum
dms_aws_sigv4_explain(PG_FUNCTION_ARGS)
{
	AwsSigV4Signature sig;
	JsonbParseState *state = NULL;
	JsonbValue	k;
	JsonbValue *res;

	sql_sign_from_args(fcinfo, &sig);

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	sql_push_string(&state, "canonical_request", sig.canonical_request);
	sql_push_string(&state, "string_to_sign", sig.string_to_sign);
	sql_push_string(&state, "signed_headers", sig.signed_headers);
	sql_push_string(&state, "signature", sig.signature);
	k.type = jbvString;
	k.val.string.val = "headers";
	k.val.string.len = strlen("headers");
	pushJsonbValue(&state, WJB_KEY, &k);
	sql_push_headers(&state, &sig);
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
}

/*
 * dms_aws_uri_encode
 *		SQL: aws_uri_encode(str, encode_slash) percent-encodes as AWS does.
 */
Datum
dms_aws_uri_encode(PG_FUNCTION_ARGS)
{
	text	   *str = PG_GETARG_TEXT_PP(0);
	bool		encode_slash = PG_GETARG_BOOL(1);
	StringInfoData buf;

	initStringInfo(&buf);
	aws_uri_encode_append(&buf, VARDATA_ANY(str), VARSIZE_ANY_EXHDR(str),
						  encode_slash);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}

/* ------------------------------------------------------------------------
 * HTTP diagnostics: dms_stream.http_request and dms_stream.http_request_many
 * run requests through the extension's HTTP layer (src/http.c), so that the
 * tests can exercise retries, timeouts, cancellation and error parsing.
 * ------------------------------------------------------------------------
 */

/* Number of result columns after the optional leading idx column. */
#define HTTP_RESULT_COLS 10

/*
 * sql_jsonb_object_from_headers
 *		Build a JSON object from name/value pairs (a repeated name keeps its
 *		last value).
 */
static Jsonb *
sql_jsonb_object_from_headers(const AwsHeader *headers, int n)
{
	JsonbParseState *state = NULL;
	JsonbValue *res;
	int			i;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i < n; i++)
		sql_push_string(&state, headers[i].name, headers[i].value);
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/*
 * sql_text_or_null
 *		Datum for a C string, with *isnull set when it is NULL.
 */
static Datum
sql_text_or_null(const char *s, bool *isnull)
{
	*isnull = (s == NULL);
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/*
 * sql_http_result_values
 *		Fill the result columns for one response.
 */
static void
sql_http_result_values(const DmsHttpResponse *resp, Datum *values, bool *nulls)
{
	bytea	   *body = (bytea *) palloc(VARHDRSZ + resp->body_len);

	SET_VARSIZE(body, VARHDRSZ + resp->body_len);
	if (resp->body_len > 0)
		memcpy(VARDATA(body), resp->body, resp->body_len);

	memset(nulls, 0, sizeof(bool) * HTTP_RESULT_COLS);
	values[0] = Int32GetDatum((int32) resp->status);
	values[1] = JsonbPGetDatum(sql_jsonb_object_from_headers(resp->headers, resp->nheaders));
	values[2] = PointerGetDatum(body);
	values[3] = Int32GetDatum(resp->attempts);
	values[4] = sql_text_or_null(resp->error_code, &nulls[4]);
	values[5] = sql_text_or_null(resp->error_message, &nulls[5]);
	values[6] = sql_text_or_null(resp->request_id, &nulls[6]);
	values[7] = sql_text_or_null(resp->transport_error, &nulls[7]);
	values[8] = BoolGetDatum(resp->reused_connection);
	values[9] = Float8GetDatum(resp->elapsed_ms);
}

/*
 * sql_credentials
 *		Validate the credential arguments of the HTTP diagnostics; returns
 *		NULL when no access key is given (unsigned requests).
 */
static AwsCredentials *
sql_credentials(FunctionCallInfo fcinfo, int akid_arg)
{
	AwsCredentials *cred;

	if (PG_ARGISNULL(akid_arg))
		return NULL;
	cred = palloc0(sizeof(AwsCredentials));
	cred->access_key_id = text_to_cstring(PG_GETARG_TEXT_PP(akid_arg));
	if (PG_ARGISNULL(akid_arg + 1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("secret_access_key must not be NULL when access_key_id is given"),
				 errhint("Pass both, or neither for an unsigned request.")));
	cred->secret_access_key = text_to_cstring(PG_GETARG_TEXT_PP(akid_arg + 1));
	if (!PG_ARGISNULL(akid_arg + 2))
		cred->session_token = text_to_cstring(PG_GETARG_TEXT_PP(akid_arg + 2));
	return cred;
}

/*
 * sql_check_signing
 *		A signed request needs a service and a region.
 */
static void
sql_check_signing(const DmsHttpRequest *req, int idx)
{
	if (req->credentials != NULL && (req->service == NULL || req->region == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("request %d is signed but has no service or region", idx),
				 errhint("Give service (\"s3\", \"kinesis\", ...) and region, "
						 "or no access key for an unsigned request.")));
}

/*
 * dms_http_request_sql
 *		SQL: http_request(method, url, headers, body, service, region,
 *		access_key_id, secret_access_key, session_token, timeout_ms,
 *		max_retries, raise_error) runs one request through the HTTP layer.
 */
Datum
dms_http_request_sql(PG_FUNCTION_ARGS)
{
	DmsHttpRequest req;
	DmsHttpResponse *resp;
	TupleDesc	tupdesc;
	Datum		values[HTTP_RESULT_COLS];
	bool		nulls[HTTP_RESULT_COLS];

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	memset(&req, 0, sizeof(req));
	req.method = sql_required_text(fcinfo, 0, "method");
	req.url = sql_required_text(fcinfo, 1, "url");
	if (!PG_ARGISNULL(2))
		req.headers = sql_headers_from_jsonb(PG_GETARG_JSONB_P(2), &req.nheaders);
	if (!PG_ARGISNULL(3))
	{
		bytea	   *body = PG_GETARG_BYTEA_PP(3);

		req.body = VARDATA_ANY(body);
		req.body_len = VARSIZE_ANY_EXHDR(body);
	}
	if (!PG_ARGISNULL(4))
		req.service = text_to_cstring(PG_GETARG_TEXT_PP(4));
	if (!PG_ARGISNULL(5))
		req.region = text_to_cstring(PG_GETARG_TEXT_PP(5));
	req.credentials = sql_credentials(fcinfo, 6);
	req.timeout_ms = PG_ARGISNULL(9) ? 0 : PG_GETARG_INT32(9);
	req.max_retries = PG_ARGISNULL(10) ? -1 : PG_GETARG_INT32(10);
	if (req.timeout_ms < 0 || req.max_retries < -1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout_ms and max_retries must not be negative")));
	sql_check_signing(&req, 1);

	resp = dms_http_request(&req);
	if (!PG_ARGISNULL(11) && PG_GETARG_BOOL(11) && !resp->ok)
		dms_http_raise_error(ERROR, "HTTP request", &req, resp);

	sql_http_result_values(resp, values, nulls);
	tupdesc = BlessTupleDesc(tupdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * sql_json_field
 *		A string member of a request object, or NULL; error if it is there
 *		but not a string.
 */
static char *
sql_json_field(JsonbContainer *obj, const char *key, int idx)
{
	JsonbValue	v;

	if (getKeyJsonValueFromContainer(obj, key, strlen(key), &v) == NULL ||
		v.type == jbvNull)
		return NULL;
	if (v.type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" of request %d must be a JSON string", key, idx),
				 errdetail("The value given is %s.", sql_jsonb_type_name(&v))));
	return pnstrdup(v.val.string.val, v.val.string.len);
}

/*
 * sql_json_int_field
 *		An integer member of a request object, or dflt.
 */
static int
sql_json_int_field(JsonbContainer *obj, const char *key, int idx, int dflt)
{
	JsonbValue	v;

	if (getKeyJsonValueFromContainer(obj, key, strlen(key), &v) == NULL ||
		v.type == jbvNull)
		return dflt;
	if (v.type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" of request %d must be a JSON number", key, idx),
				 errdetail("The value given is %s.", sql_jsonb_type_name(&v))));
	return DatumGetInt32(DirectFunctionCall1(numeric_int4,
											 NumericGetDatum(v.val.numeric)));
}

/*
 * dms_http_request_many_sql
 *		SQL: http_request_many(requests jsonb, access_key_id,
 *		secret_access_key, session_token) runs an array of requests
 *		concurrently; one row per request, in order.
 */
Datum
dms_http_request_many_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Jsonb	   *jb;
	AwsCredentials *cred;
	DmsHttpRequest *reqs;
	DmsHttpResponse *resps;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			n = 0;
	int			i;

	InitMaterializedSRF(fcinfo, 0);

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("requests must not be NULL")));
	jb = PG_GETARG_JSONB_P(0);
	if (!JB_ROOT_IS_ARRAY(jb) || JB_ROOT_IS_SCALAR(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("requests must be a JSON array of objects"),
				 errhint("Pass '[{\"method\": \"GET\", \"url\": \"http://...\"}, ...]'.")));
	cred = sql_credentials(fcinfo, 1);

	reqs = palloc0(sizeof(DmsHttpRequest) * (JB_ROOT_COUNT(jb) + 1));
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		JsonbContainer *obj;
		DmsHttpRequest *req;
		JsonbValue	hv;
		char	   *body;

		if (tok != WJB_ELEM)
			continue;
		if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("request %d must be a JSON object", n + 1),
					 errdetail("The value given is %s.", sql_jsonb_type_name(&v))));
		obj = v.val.binary.data;
		req = &reqs[n];
		req->method = sql_json_field(obj, "method", n + 1);
		req->url = sql_json_field(obj, "url", n + 1);
		if (req->method == NULL || req->url == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("request %d needs \"method\" and \"url\"", n + 1)));
		body = sql_json_field(obj, "body", n + 1);
		if (body != NULL)
		{
			req->body = body;
			req->body_len = strlen(body);
		}
		req->service = sql_json_field(obj, "service", n + 1);
		req->region = sql_json_field(obj, "region", n + 1);
		req->timeout_ms = sql_json_int_field(obj, "timeout_ms", n + 1, 0);
		req->connect_timeout_ms = sql_json_int_field(obj, "connect_timeout_ms", n + 1, 0);
		req->max_retries = sql_json_int_field(obj, "max_retries", n + 1, -1);
		if (getKeyJsonValueFromContainer(obj, "headers", 7, &hv) != NULL &&
			hv.type != jbvNull)
		{
			if (hv.type != jbvBinary || !JsonContainerIsObject(hv.val.binary.data))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("\"headers\" of request %d must be a JSON object", n + 1)));
			req->headers = sql_headers_from_jsonb(JsonbValueToJsonb(&hv), &req->nheaders);
		}
		req->credentials = cred;
		sql_check_signing(req, n + 1);
		n++;
	}

	resps = palloc0(sizeof(DmsHttpResponse) * (n + 1));
	dms_http_perform(reqs, resps, n);

	for (i = 0; i < n; i++)
	{
		Datum		values[HTTP_RESULT_COLS + 1];
		bool		nulls[HTTP_RESULT_COLS + 1];

		values[0] = Int32GetDatum(i + 1);
		nulls[0] = false;
		sql_http_result_values(&resps[i], values + 1, nulls + 1);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
