/*-------------------------------------------------------------------------
 *
 * endpoint_sql.c
 *	  SQL-callable diagnostics about endpoints.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/timestamp.h"

#include "aws_credentials.h"
#include "endpoint.h"

PG_FUNCTION_INFO_V1(dms_endpoint_credentials);

/*
 * dms_endpoint_credentials
 *		endpoint_credentials(endpoint_name): which source of the credential
 *		chain signs the endpoint's requests, with the access key id (not a
 *		secret) and the expiry.  Never returns the secret or the token.
 */
Datum
dms_endpoint_credentials(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	DmsEndpoint *ep = dms_endpoint_load(name);
	AwsResolvedCredentials *creds = aws_credentials_resolve(ep);
	TupleDesc	desc;
	Datum		values[4];
	bool		nulls[4] = {0};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	values[0] = CStringGetTextDatum(creds->source);
	values[1] = CStringGetTextDatum(creds->credentials.access_key_id);
	values[2] = BoolGetDatum(creds->credentials.session_token != NULL);
	if (creds->expires_at != 0)
		values[3] = TimestampTzGetDatum(creds->expires_at);
	else
		nulls[3] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
