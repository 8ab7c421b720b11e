/*-------------------------------------------------------------------------
 *
 * endpoint.c
 *	  Load endpoint configuration from the catalog.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdlib.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"

#include "endpoint.h"

/* Copy a text column of the current SPI row into the caller's context. */
static char *
spi_text(HeapTuple tuple, TupleDesc desc, int col, MemoryContext cxt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);
	MemoryContext old;
	char	   *result;

	if (isnull)
		return NULL;
	old = MemoryContextSwitchTo(cxt);
	result = TextDatumGetCString(d);
	MemoryContextSwitchTo(old);
	return result;
}

/*
 * region_from_arn
 *		The region field of an ARN (arn:aws:kinesis:REGION:...), or NULL.
 */
static char *
region_from_arn(const char *arn)
{
	const char *p = arn;
	int			colons = 0;
	const char *start = NULL;

	for (; *p; p++)
		if (*p == ':')
		{
			colons++;
			if (colons == 3)
				start = p + 1;
			else if (colons == 4)
				return start && p > start ? pnstrdup(start, p - start) : NULL;
		}
	return NULL;
}

/*
 * dms_endpoint_load
 *		Read an endpoint and its explicit keys.
 */
DmsEndpoint *
dms_endpoint_load(const char *name)
{
	MemoryContext cxt = CurrentMemoryContext;
	DmsEndpoint *ep = palloc0(sizeof(DmsEndpoint));
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	int			ret;
	HeapTuple	tuple;
	TupleDesc	desc;
	char	   *settings_text;
	const char *arn;
	DmsJsonDoc	doc = {"endpoint settings"};

	args[0] = CStringGetTextDatum(name);

	SPI_connect();
	ret = SPI_execute_with_args(
								"SELECT e.engine, e.endpoint_type, e.settings::text, e.endpoint_url, e.region,"
								"       e.s3_addressing_style, c.access_key_id, c.secret_access_key, c.session_token"
								"  FROM dms_stream.endpoint e"
								"  LEFT JOIN dms_stream.endpoint_credential c USING (endpoint_name)"
								" WHERE e.endpoint_name = $1",
								1, argtypes, args, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read endpoint \"%s\": SPI error %d", name, ret);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("endpoint \"%s\" does not exist", name),
				 errhint("See SELECT endpoint_name FROM dms_stream.endpoint.")));

	tuple = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	ep->name = MemoryContextStrdup(cxt, name);
	ep->engine = spi_text(tuple, desc, 1, cxt);
	ep->endpoint_type = spi_text(tuple, desc, 2, cxt);
	settings_text = spi_text(tuple, desc, 3, cxt);
	ep->endpoint_url = spi_text(tuple, desc, 4, cxt);
	ep->region = spi_text(tuple, desc, 5, cxt);
	ep->s3_addressing_style = spi_text(tuple, desc, 6, cxt);
	ep->keys.access_key_id = spi_text(tuple, desc, 7, cxt);
	ep->keys.secret_access_key = spi_text(tuple, desc, 8, cxt);
	ep->keys.session_token = spi_text(tuple, desc, 9, cxt);
	ep->has_keys = (ep->keys.access_key_id != NULL);
	SPI_finish();

	ep->settings = dms_json_parse(&doc, settings_text, strlen(settings_text));

	/* A trailing slash on the URL would double up with request paths. */
	if (ep->endpoint_url)
	{
		size_t		len = strlen(ep->endpoint_url);

		if (len > 0 && ep->endpoint_url[len - 1] == '/')
			ep->endpoint_url[len - 1] = '\0';
	}

	if (ep->region == NULL && (arn = dms_endpoint_setting(ep, "StreamArn")) != NULL)
		ep->region = region_from_arn(arn);
	if (ep->region == NULL && getenv("AWS_REGION") && *getenv("AWS_REGION"))
		ep->region = pstrdup(getenv("AWS_REGION"));
	if (ep->region == NULL && getenv("AWS_DEFAULT_REGION") && *getenv("AWS_DEFAULT_REGION"))
		ep->region = pstrdup(getenv("AWS_DEFAULT_REGION"));
	if (ep->region == NULL)
		ep->region = pstrdup("us-east-1");
	return ep;
}

/*
 * dms_endpoint_setting
 *		A string member of the endpoint's settings, or NULL.
 */
const char *
dms_endpoint_setting(const DmsEndpoint *ep, const char *key)
{
	json_t	   *v = json_object_get(ep->settings, key);

	return (v && json_is_string(v)) ? json_string_value(v) : NULL;
}
