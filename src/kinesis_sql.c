/*-------------------------------------------------------------------------
 *
 * kinesis_sql.c
 *	  SQL utilities around the Kinesis client (declared in
 *	  sql/install/41_kinesis.sql, executable by dms_stream_admin only):
 *
 *	kinesis_describe_stream(endpoint)		summary and shards of the stream
 *	kinesis_read_records(endpoint, ...)		the DBA's way to read records back
 *	kinesis_put_records(endpoint, keys, data text[], ...)
 *	kinesis_put_binary_records(endpoint, keys, data bytea[], ...)
 *											send through the PutRecords
 *											batcher, return its stats
 *
 * Text is converted between the database encoding and UTF-8, the encoding
 * of Kinesis's JSON protocol; binary data is sent as is.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/base64.h"
#include "common/jsonapi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "dms_json.h"
#include "http.h"
#include "kinesis.h"

PG_FUNCTION_INFO_V1(dms_kinesis_describe_stream);
PG_FUNCTION_INFO_V1(dms_kinesis_read_records);
PG_FUNCTION_INFO_V1(dms_kinesis_put_records);
PG_FUNCTION_INFO_V1(dms_kinesis_put_binary_records);

/* Empty GetRecords answers in a row after which a shard counts as read. */
#define READ_MAX_EMPTY_CALLS	25

/* Refused records listed by name in the stats of kinesis_put_records. */
#define PUT_MAX_LISTED_REJECTS	100

/*
 * json_to_jsonb
 *		A jansson value as a jsonb datum (UTF-8 converted to the database
 *		encoding).
 */
static Datum
json_to_jsonb(json_t *value)
{
	char	   *text = dms_json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY, "a Kinesis answer");
	char	   *server;

	server = pg_any_to_server(text, strlen(text), PG_UTF8);
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(server));
}

/*
 * required_text_arg
 *		A text argument that must not be NULL, as a C string.
 */
static char *
required_text_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/*
 * dms_kinesis_describe_stream
 *		kinesis_describe_stream(endpoint_name): {"EndpointName",
 *		"StreamDescriptionSummary", "Shards"} from DescribeStreamSummary and
 *		every page of ListShards.
 */
Datum
dms_kinesis_describe_stream(PG_FUNCTION_ARGS)
{
	char	   *name = required_text_arg(fcinfo, 0, "endpoint_name");
	KinesisClient *client = kinesis_client_open(name);
	json_t	   *out = dms_json_new_object();

	json_object_set_new(out, "EndpointName", json_string(client->endpoint_name));
	json_object_set(out, "StreamDescriptionSummary",
					kinesis_describe_stream_summary(client));
	json_object_set_new(out, "Shards", kinesis_list_shards(client));
	PG_RETURN_DATUM(json_to_jsonb(out));
}

/*
 * is_valid_json
 *		Whether text (in the database encoding) is JSON that jsonb accepts,
 *		checked with PostgreSQL's own parser without raising errors.
 */
static bool
is_valid_json(char *text, int len)
{
	JsonLexContext *lex = makeJsonLexContextCstringLen(text, len,
													   GetDatabaseEncoding(), true);

	return pg_parse_json(lex, &nullSemAction) == JSON_SUCCESS;
}

/*
 * read_record_row
 *		Add one GetRecords record as a row of kinesis_read_records.
 */
static void
read_record_row(ReturnSetInfo *rsinfo, const char *shard_id, json_t *rec)
{
	Datum		values[7];
	bool		nulls[7] = {0};
	const char *seq = json_string_value(json_object_get(rec, "SequenceNumber"));
	const char *pkey = json_string_value(json_object_get(rec, "PartitionKey"));
	const char *b64 = json_string_value(json_object_get(rec, "Data"));
	json_t	   *arrival = json_object_get(rec, "ApproximateArrivalTimestamp");
	int			b64len = b64 ? (int) strlen(b64) : 0;
	bytea	   *data = palloc(VARHDRSZ + pg_b64_dec_len(b64len) + 1);
	int			len = 0;

	if (b64len > 0)
	{
		len = pg_b64_decode(b64, b64len, VARDATA(data), pg_b64_dec_len(b64len));
		if (len < 0)
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("Kinesis returned a record whose Data is not base64"),
					 errdetail("Shard %s, sequence number %s.", shard_id,
							   seq ? seq : "(none)")));
	}
	SET_VARSIZE(data, VARHDRSZ + len);

	values[0] = CStringGetTextDatum(shard_id);
	if (seq)
		values[1] = CStringGetTextDatum(seq);
	else
		nulls[1] = true;
	if (pkey)
		values[2] = CStringGetTextDatum(pg_any_to_server(pkey, strlen(pkey), PG_UTF8));
	else
		nulls[2] = true;
	if (json_is_number(arrival))
		values[3] = DirectFunctionCall1(float8_timestamptz,
										Float8GetDatum(json_number_value(arrival)));
	else
		nulls[3] = true;
	values[4] = PointerGetDatum(data);

	/* data_text: UTF-8 without NUL bytes; data_json: JSON that jsonb takes */
	if (pg_encoding_verifymbstr(PG_UTF8, VARDATA(data), len) == len)
	{
		char	   *utf8 = VARDATA(data);
		char	   *text;
		int			tlen;

		utf8[len] = '\0';		/* room was left for it */
		text = pg_any_to_server(utf8, len, PG_UTF8);
		tlen = strlen(text);
		values[5] = PointerGetDatum(cstring_to_text_with_len(text, tlen));
		if (tlen > 0 && is_valid_json(text, tlen))
			values[6] = DirectFunctionCall1(jsonb_in, CStringGetDatum(text));
		else
			nulls[6] = true;
	}
	else
	{
		nulls[5] = true;
		nulls[6] = true;
	}

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * dms_kinesis_read_records
 *		kinesis_read_records(endpoint_name, shard_id, iterator_type,
 *		max_records, starting_sequence_number): the records of one shard or
 *		of every shard (in shard order), at most max_records per shard.  A
 *		shard is read until max_records, its end (closed shard), or an empty
 *		answer at the tip (MillisBehindLatest 0).
 */
Datum
dms_kinesis_read_records(PG_FUNCTION_ARGS)
{
	static const char *const types[] = {
		"TRIM_HORIZON", "LATEST", "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", NULL
	};
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *endpoint = required_text_arg(fcinfo, 0, "endpoint_name");
	char	   *shard_arg = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *type = PG_ARGISNULL(2) ? pstrdup("TRIM_HORIZON") :
		text_to_cstring(PG_GETARG_TEXT_PP(2));
	int			max_records = PG_ARGISNULL(3) ? 1000 : PG_GETARG_INT32(3);
	char	   *start_seq = PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4));
	bool		by_seq;
	KinesisClient *client;
	List	   *shard_ids = NIL;
	ListCell   *lc;
	MemoryContext shard_cxt;
	MemoryContext call_cxt;
	MemoryContext old;
	int			i;

	for (i = 0; types[i] != NULL; i++)
		if (pg_strcasecmp(type, types[i]) == 0)
			break;
	if (types[i] == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid iterator_type \"%s\"", type),
				 errhint("Use TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER.")));
	type = pstrdup(types[i]);
	by_seq = (i >= 2);
	if (by_seq && start_seq == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("iterator_type %s needs starting_sequence_number", type)));
	if (!by_seq && start_seq != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("starting_sequence_number is only used with AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER"),
				 errhint("Pass iterator_type => 'AT_SEQUENCE_NUMBER' or 'AFTER_SEQUENCE_NUMBER'.")));
	if (max_records < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_records must be at least 1")));

	InitMaterializedSRF(fcinfo, 0);
	client = kinesis_client_open(endpoint);

	if (shard_arg != NULL)
		shard_ids = list_make1(shard_arg);
	else
	{
		json_t	   *shards = kinesis_list_shards(client);
		size_t		idx;
		json_t	   *shard;

		json_array_foreach(shards, idx, shard)
		{
			const char *id = json_string_value(json_object_get(shard, "ShardId"));

			if (id != NULL)
				shard_ids = lappend(shard_ids, pstrdup(id));
		}
	}

	shard_cxt = AllocSetContextCreate(CurrentMemoryContext, "kinesis_read_records shard",
									  ALLOCSET_DEFAULT_SIZES);
	call_cxt = AllocSetContextCreate(CurrentMemoryContext, "kinesis_read_records call",
									 ALLOCSET_DEFAULT_SIZES);
	foreach(lc, shard_ids)
	{
		const char *shard_id = lfirst(lc);
		char	   *it;
		int			got = 0;
		int			empty = 0;

		old = MemoryContextSwitchTo(shard_cxt);
		it = kinesis_get_shard_iterator(client, shard_id, type, start_seq);
		MemoryContextSwitchTo(old);

		while (it != NULL && got < max_records)
		{
			json_t	   *answer;
			json_t	   *records;
			json_t	   *rec;
			json_t	   *behind;
			const char *next;
			size_t		idx;
			size_t		n;

			CHECK_FOR_INTERRUPTS();
			old = MemoryContextSwitchTo(call_cxt);
			answer = kinesis_get_records(client, it,
										 Min(max_records - got, KINESIS_MAX_GET_RECORDS));
			records = json_object_get(answer, "Records");
			n = json_array_size(records);
			json_array_foreach(records, idx, rec)
			{
				if (got >= max_records)
					break;
				read_record_row(rsinfo, shard_id, rec);
				got++;
			}
			next = json_string_value(json_object_get(answer, "NextShardIterator"));
			behind = json_object_get(answer, "MillisBehindLatest");
			it = next ? MemoryContextStrdup(shard_cxt, next) : NULL;
			MemoryContextSwitchTo(old);
			MemoryContextReset(call_cxt);

			if (n == 0 &&
				(!json_is_integer(behind) || json_integer_value(behind) <= 0 ||
				 ++empty >= READ_MAX_EMPTY_CALLS))
				break;
			if (n > 0)
				empty = 0;
		}
		MemoryContextReset(shard_cxt);
	}
	return (Datum) 0;
}

/*
 * put_options
 *		Batcher options from the options jsonb of kinesis_put_records.
 */
static void
put_options(Jsonb *jb, KinesisBatcherOptions *opts)
{
	static const char *const keys[] = {
		"max_request_records", "max_request_bytes", "max_body_bytes",
		"max_record_bytes", "max_buffered_bytes", "max_buffered_records",
		"max_record_retries", "strict_key_order", "requeue_failed_requests", NULL
	};
	DmsJsonDoc	doc = {"Kinesis put options"};
	json_t	   *obj = dms_json_from_jsonb(&doc, jb);
	int64		v;

	dms_json_check_keys(&doc, obj, "", keys);
	if (dms_json_get_int(&doc, obj, "", "max_request_records", false, 1,
						 KINESIS_MAX_REQUEST_RECORDS, &v))
		opts->max_request_records = (int) v;
	if (dms_json_get_int(&doc, obj, "", "max_request_bytes", false, 1,
						 10 * 1024 * 1024, &v))
		opts->max_request_bytes = v;
	if (dms_json_get_int(&doc, obj, "", "max_body_bytes", false, 1,
						 64 * 1024 * 1024, &v))
		opts->max_body_bytes = v;
	if (dms_json_get_int(&doc, obj, "", "max_record_bytes", false, 1,
						 10 * 1024 * 1024, &v))
		opts->max_record_bytes = v;
	if (dms_json_get_int(&doc, obj, "", "max_buffered_bytes", false, 1,
						 PG_INT64_MAX, &v))
		opts->max_buffered_bytes = v;
	if (dms_json_get_int(&doc, obj, "", "max_buffered_records", false, 1,
						 100000000, &v))
		opts->max_buffered_records = (int) v;
	if (dms_json_get_int(&doc, obj, "", "max_record_retries", false, 0, 10000, &v))
		opts->max_record_retries = (int) v;
	(void) dms_json_get_bool(&doc, obj, "", "strict_key_order", false, false,
							 &opts->strict_key_order);
	(void) dms_json_get_bool(&doc, obj, "", "requeue_failed_requests", false, false,
							 &opts->requeue_failed_requests);
}

/*
 * array_arg
 *		Deconstruct a one-dimensional array argument (NULL elements kept).
 */
static int
array_arg(FunctionCallInfo fcinfo, int argno, const char *name, Oid elemtype,
		  Datum **elems, bool **elemnulls)
{
	ArrayType  *arr;
	int			n;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
	arr = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", name)));
	deconstruct_array(arr, elemtype, -1, false, TYPALIGN_INT, elems, elemnulls, &n);
	return n;
}

/* One record of kinesis_put_records, converted for the batcher. */
typedef struct PutRecord
{
	char	   *data;
	size_t		data_len;
	char	   *key;			/* UTF-8, NULL if the element is NULL */
	char	   *hash_key;		/* NULL if none */
	bool		data_null;
} PutRecord;

/*
 * put_record_at
 *		Element i of the argument arrays, converted to UTF-8 where text.
 */
static void
put_record_at(PutRecord *r, int i, bool is_text,
			  Datum *keys, bool *key_nulls, Datum *data, bool *data_nulls,
			  Datum *hashes, bool *hash_nulls)
{
	memset(r, 0, sizeof(*r));
	if (!key_nulls[i])
	{
		char	   *k = TextDatumGetCString(keys[i]);

		r->key = pg_server_to_any(k, strlen(k), PG_UTF8);
	}
	if (hashes != NULL && !hash_nulls[i])
		r->hash_key = TextDatumGetCString(hashes[i]);
	if (data_nulls[i])
	{
		r->data_null = true;
		return;
	}
	else
	{
		struct varlena *v = (struct varlena *) DatumGetPointer(data[i]);
		char	   *p = VARDATA_ANY(v);
		int			len = VARSIZE_ANY_EXHDR(v);

		if (is_text)
		{
			r->data = pg_server_to_any(p, len, PG_UTF8);
			r->data_len = (r->data == p) ? (size_t) len : strlen(r->data);
		}
		else
		{
			r->data = p;
			r->data_len = len;
		}
	}
}

/* What the acknowledgement callback of kinesis_put_records collects. */
typedef struct PutAckState
{
	bool	   *acked;			/* by tag - 1 */
	int			n;
	int64		double_acks;	/* a tag acknowledged twice: a batcher bug */
	json_t	   *by_shard;		/* shard id -> records acknowledged */
	MemoryContext cxt;			/* where by_shard lives */
} PutAckState;

/*
 * put_on_ack
 *		Batcher acknowledgement callback: count records per shard and check
 *		that no record is acknowledged twice.
 */
static void
put_on_ack(void *arg, uint64 tag, const char *shard_id, const char *sequence_number)
{
	PutAckState *st = (PutAckState *) arg;
	const char *shard = shard_id ? shard_id : "(none)";
	json_t	   *count = json_object_get(st->by_shard, shard);
	MemoryContext old;

	if (tag < 1 || tag > (uint64) st->n || st->acked[tag - 1])
		st->double_acks++;
	else
		st->acked[tag - 1] = true;

	/* callbacks run in the batcher's per-round context: jansson allocates here */
	old = MemoryContextSwitchTo(st->cxt);
	if (count != NULL)
		json_integer_set(count, json_integer_value(count) + 1);
	else
		json_object_set_new(st->by_shard, shard, json_integer(1));
	MemoryContextSwitchTo(old);
}

/*
 * put_records_common
 *		The body of kinesis_put_records and kinesis_put_binary_records:
 *		(endpoint_name, partition_keys text[], data, max_in_flight,
 *		explicit_hash_keys text[], skip_invalid, options jsonb).
 *
 * Without skip_invalid, every record is checked first and the first refused
 * one raises an error before anything is sent.  With it, refused records
 * are left out and listed in the result ("rejected"), the others are sent.
 */
static Datum
put_records_common(FunctionCallInfo fcinfo, bool is_text)
{
	char	   *endpoint = required_text_arg(fcinfo, 0, "endpoint_name");
	Datum	   *keys;
	bool	   *key_nulls;
	Datum	   *data;
	bool	   *data_nulls;
	Datum	   *hashes = NULL;
	bool	   *hash_nulls = NULL;
	int			n;
	int			ndata;
	int			max_in_flight = PG_ARGISNULL(3) ? 4 : PG_GETARG_INT32(3);
	bool		skip_invalid = PG_ARGISNULL(5) ? false : PG_GETARG_BOOL(5);
	KinesisBatcherOptions opts;
	KinesisClient *client;
	KinesisBatcher *b;
	MemoryContext rec_cxt;
	MemoryContext old;
	json_t	   *stats;
	json_t	   *rejected = json_array();
	int64		nrejected = 0;
	TimestampTz started = GetCurrentTimestamp();
	PutAckState ack;
	int			i;

	n = array_arg(fcinfo, 1, "partition_keys", TEXTOID, &keys, &key_nulls);
	ndata = array_arg(fcinfo, 2, "data", is_text ? TEXTOID : BYTEAOID, &data, &data_nulls);
	if (ndata != n)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("partition_keys has %d elements but data has %d", n, ndata),
				 errhint("Give one partition key per record.")));
	if (!PG_ARGISNULL(4))
	{
		int			nh = array_arg(fcinfo, 4, "explicit_hash_keys", TEXTOID, &hashes, &hash_nulls);

		if (nh != n)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("explicit_hash_keys has %d elements but data has %d", nh, n),
					 errhint("Give one explicit hash key (or NULL) per record, or pass NULL.")));
	}
	if (max_in_flight < 1 || max_in_flight > DMS_HTTP_MAX_PARALLEL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_in_flight must be between 1 and %d", DMS_HTTP_MAX_PARALLEL)));

	kinesis_batcher_default_options(&opts);
	opts.max_in_flight = max_in_flight;
	/* a SQL call fails once the HTTP layer gives up (its time is bounded) */
	opts.requeue_failed_requests = false;
	ack.acked = palloc0(sizeof(bool) * Max(n, 1));
	ack.n = n;
	ack.double_acks = 0;
	ack.by_shard = dms_json_new_object();
	ack.cxt = CurrentMemoryContext;
	opts.on_ack = put_on_ack;
	opts.ack_arg = &ack;
	if (!PG_ARGISNULL(6))
		put_options(PG_GETARG_JSONB_P(6), &opts);

	rec_cxt = AllocSetContextCreate(CurrentMemoryContext, "kinesis_put_records record",
									ALLOCSET_SMALL_SIZES);

	/* Without skip_invalid, refuse the call before sending anything. */
	if (!skip_invalid)
	{
		for (i = 0; i < n; i++)
		{
			PutRecord	r;
			char	   *problem = NULL;

			old = MemoryContextSwitchTo(rec_cxt);
			put_record_at(&r, i, is_text, keys, key_nulls, data, data_nulls,
						  hashes, hash_nulls);
			if (r.data_null)
				problem = pstrdup("the data is NULL");
			else
				(void) kinesis_record_check(r.data, r.data_len, r.key, r.hash_key,
											opts.max_record_bytes, &problem);
			MemoryContextSwitchTo(old);
			if (problem != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("Kinesis record %d of %d refused: %s", i + 1, n, problem),
						 errdetail("Nothing was sent to endpoint \"%s\".", endpoint),
						 errhint("Pass skip_invalid => true to send the other records and list the refused ones.")));
			MemoryContextReset(rec_cxt);
		}
	}

	client = kinesis_client_open(endpoint);
	b = kinesis_batcher_create(client, &opts);

	for (i = 0; i < n; i++)
	{
		PutRecord	r;
		char	   *problem = NULL;
		KinesisRecordStatus st;

		old = MemoryContextSwitchTo(rec_cxt);
		put_record_at(&r, i, is_text, keys, key_nulls, data, data_nulls,
					  hashes, hash_nulls);
		if (r.data_null)
		{
			st = KINESIS_RECORD_TOO_LARGE;	/* any refusal */
			problem = pstrdup("the data is NULL");
		}
		else
			st = kinesis_batcher_add(b, r.data, r.data_len, r.key, r.hash_key,
									 (uint64) (i + 1), &problem);
		MemoryContextSwitchTo(old);
		if (st != KINESIS_RECORD_OK)
		{
			nrejected++;
			if (json_array_size(rejected) < PUT_MAX_LISTED_REJECTS)
			{
				json_t	   *o = dms_json_new_object();

				json_object_set_new(o, "index", json_integer(i + 1));
				json_object_set_new(o, "reason", json_string(problem));
				json_array_append_new(rejected, o);
			}
		}
		MemoryContextReset(rec_cxt);
	}
	kinesis_batcher_flush(b);

	stats = kinesis_batcher_stats_json(b);
	json_object_set_new(stats, "records_rejected", json_integer(nrejected));
	json_object_set_new(stats, "rejected", rejected);
	json_object_set_new(stats, "acks_by_shard", ack.by_shard);
	json_object_set_new(stats, "double_acks", json_integer(ack.double_acks));
	json_object_set_new(stats, "max_in_flight_setting", json_integer(max_in_flight));
	json_object_set_new(stats, "call_ms",
						json_real((double) (GetCurrentTimestamp() - started) / 1000.0));
	json_object_set_new(stats, "stream", json_string(client->stream_arn ?
													 client->stream_arn : client->stream_name));
	PG_RETURN_DATUM(json_to_jsonb(stats));
}

/*
 * dms_kinesis_put_records
 *		kinesis_put_records(endpoint_name, partition_keys text[], data text[],
 *		max_in_flight, explicit_hash_keys, skip_invalid, options): send text
 *		records (as UTF-8) through the batcher and return its stats.
 */
Datum
dms_kinesis_put_records(PG_FUNCTION_ARGS)
{
	return put_records_common(fcinfo, true);
}

/*
 * dms_kinesis_put_binary_records
 *		Same with data bytea[], sent byte for byte.
 */
Datum
dms_kinesis_put_binary_records(PG_FUNCTION_ARGS)
{
	return put_records_common(fcinfo, false);
}
