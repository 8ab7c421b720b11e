/*-------------------------------------------------------------------------
 *
 * s3_sql.c
 *	  SQL-callable S3 utilities (declared in sql/install/40_s3.sql,
 *	  executable by dms_stream_admin only).
 *
 * Every function takes the name of an S3 endpoint: the bucket is its
 * BucketName, and every key (and listing prefix) is relative to its
 * BucketFolder, which is prepended as DMS does; s3_list_objects returns keys
 * relative to it too, so a listed key can be passed back as it is.
 *
 * s3_object_checksum, s3_copy_object_streamed and s3_put_generated_object
 * run the streaming reader and the multipart writer of src/s3.c on objects
 * of any size with bounded memory; they report the SHA-256 of the bytes
 * they read or wrote so the result can be checked against another client.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/cryptohash.h"
#include "common/pg_prng.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "aws_sigv4.h"
#include "s3.h"

PG_FUNCTION_INFO_V1(dms_s3_list_objects);
PG_FUNCTION_INFO_V1(dms_s3_head_object);
PG_FUNCTION_INFO_V1(dms_s3_get_object);
PG_FUNCTION_INFO_V1(dms_s3_put_object);
PG_FUNCTION_INFO_V1(dms_s3_delete_object);
PG_FUNCTION_INFO_V1(dms_s3_object_checksum);
PG_FUNCTION_INFO_V1(dms_s3_copy_object_streamed);
PG_FUNCTION_INFO_V1(dms_s3_put_generated_object);
PG_FUNCTION_INFO_V1(dms_s3_object_url);

#define SQL_GENERATE_BLOCK	(1024 * 1024)

/*
 * sql_text_arg
 *		A text argument that must not be NULL, as a C string.
 */
static char *
sql_text_arg(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", argname)));
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/*
 * sql_key_arg
 *		A key argument (relative to BucketFolder), not NULL or empty, with
 *		no "." or ".." segment (s3_check_key_segments).
 */
static char *
sql_key_arg(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	char	   *key = sql_text_arg(fcinfo, argno, argname);

	if (key[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", argname)));
	s3_check_key_segments(argname, key, 0);
	return key;
}

/*
 * sql_bytes_arg
 *		A bigint size argument, or dflt when NULL.
 */
static int64
sql_bytes_arg(FunctionCallInfo fcinfo, int argno, int64 dflt)
{
	return PG_ARGISNULL(argno) ? dflt : PG_GETARG_INT64(argno);
}

/*
 * sql_s3_endpoint
 *		Load an endpoint and check that it is an S3 endpoint with a bucket.
 */
static DmsEndpoint *
sql_s3_endpoint(const char *name)
{
	DmsEndpoint *ep = dms_endpoint_load(name);

	if (ep->engine == NULL || strcmp(ep->engine, "s3") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("endpoint \"%s\" is not an S3 endpoint", name),
				 errdetail("Its engine is %s.", ep->engine ? ep->engine : "unknown")));
	(void) s3_endpoint_bucket(ep);
	return ep;
}

/*
 * sql_sha256_new
 *		Start an incremental SHA-256 of the bytes streamed through a function.
 */
static pg_cryptohash_ctx *
sql_sha256_new(void)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (ctx == NULL || pg_cryptohash_init(ctx) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not initialize SHA-256")));
	return ctx;
}

/*
 * sql_sha256_update
 *		Add bytes to the SHA-256.
 */
static void
sql_sha256_update(pg_cryptohash_ctx *ctx, const char *data, size_t len)
{
	if (pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute SHA-256: %s", pg_cryptohash_error(ctx))));
}

/*
 * sql_sha256_hex
 *		Finish the SHA-256; lowercase hex.
 */
static char *
sql_sha256_hex(pg_cryptohash_ctx *ctx)
{
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char	   *hex = palloc(PG_SHA256_DIGEST_STRING_LENGTH);

	if (pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute SHA-256: %s", pg_cryptohash_error(ctx))));
	pg_cryptohash_free(ctx);
	aws_hex_encode(digest, sizeof(digest), hex);
	hex[PG_SHA256_DIGEST_LENGTH * 2] = '\0';
	return hex;
}

/*
 * sql_relative_key
 *		A listed key relative to the folder prefix.
 */
static const char *
sql_relative_key(const char *key, const char *folder)
{
	size_t		len = strlen(folder);

	if (len > 0 && strncmp(key, folder, len) == 0)
		return key + len;
	return key;
}

/*
 * dms_s3_list_objects
 *		s3_list_objects(endpoint_name, prefix, start_after, max_keys,
 *		page_size): keys under BucketFolder/prefix, in key order.
 */
Datum
dms_s3_list_objects(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = sql_text_arg(fcinfo, 0, "endpoint_name");
	char	   *prefix = PG_ARGISNULL(1) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *start_after = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	int64		max_keys = PG_ARGISNULL(3) ? -1 : PG_GETARG_INT32(3);
	int			page_size = PG_ARGISNULL(4) ? S3_MAX_LIST_PAGE : PG_GETARG_INT32(4);
	DmsEndpoint *ep;
	const char *bucket;
	char	   *folder;
	char	   *full_prefix;
	char	   *full_start = NULL;
	char	   *token = NULL;
	int64		count = 0;
	MemoryContext page_cxt;
	MemoryContext old;

	if (!PG_ARGISNULL(3) && max_keys < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_keys must not be negative"),
				 errhint("NULL lists every key.")));
	if (page_size < 1 || page_size > S3_MAX_LIST_PAGE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("page_size must be between 1 and %d", S3_MAX_LIST_PAGE)));

	s3_check_key_segments("prefix", prefix, S3_SEGMENTS_PARTIAL);
	s3_check_key_segments("start_after", start_after, S3_SEGMENTS_PARTIAL);
	InitMaterializedSRF(fcinfo, 0);
	ep = sql_s3_endpoint(name);
	bucket = s3_endpoint_bucket(ep);
	folder = s3_folder_prefix(ep);
	full_prefix = psprintf("%s%s", folder, prefix);
	if (start_after != NULL)
		full_start = psprintf("%s%s", folder, start_after);
	if (max_keys == 0)
		return (Datum) 0;

	page_cxt = AllocSetContextCreate(CurrentMemoryContext, "dms_stream S3 list page",
									 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		S3ListPage	page;
		ListCell   *lc;
		int			ask = page_size;
		char	   *next = NULL;

		if (max_keys > 0)
			ask = (int) Min((int64) page_size, max_keys - count);

		CHECK_FOR_INTERRUPTS();
		old = MemoryContextSwitchTo(page_cxt);
		s3_list_objects_page(ep, bucket, full_prefix, full_start, token, ask, &page);
		foreach(lc, page.objects)
		{
			S3Object   *obj = (S3Object *) lfirst(lc);
			Datum		values[4];
			bool		nulls[4] = {false, false, false, false};

			if (max_keys > 0 && count >= max_keys)
				break;
			values[0] = CStringGetTextDatum(sql_relative_key(obj->key, folder));
			values[1] = Int64GetDatum(obj->size);
			nulls[1] = obj->size < 0;
			values[2] = TimestampTzGetDatum(obj->last_modified);
			nulls[2] = TIMESTAMP_NOT_FINITE(obj->last_modified);
			values[3] = obj->etag ? CStringGetTextDatum(obj->etag) : (Datum) 0;
			nulls[3] = obj->etag == NULL;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			count++;
		}
		MemoryContextSwitchTo(old);
		if (page.truncated && !(max_keys > 0 && count >= max_keys))
			next = pstrdup(page.next_token);
		MemoryContextReset(page_cxt);
		if (next == NULL)
			break;
		if (token != NULL)
			pfree(token);
		token = next;
	}
	MemoryContextDelete(page_cxt);
	return (Datum) 0;
}

/*
 * dms_s3_head_object
 *		s3_head_object(endpoint_name, key): one row, or none if the key does
 *		not exist.
 */
Datum
dms_s3_head_object(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = sql_text_arg(fcinfo, 0, "endpoint_name");
	char	   *key = sql_key_arg(fcinfo, 1, "key");
	DmsEndpoint *ep;
	S3Object	obj;

	InitMaterializedSRF(fcinfo, 0);
	ep = sql_s3_endpoint(name);
	if (s3_head_object(ep, s3_endpoint_bucket(ep), s3_folder_key(ep, key), true, &obj))
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = Int64GetDatum(obj.size);
		values[1] = TimestampTzGetDatum(obj.last_modified);
		nulls[1] = TIMESTAMP_NOT_FINITE(obj.last_modified);
		values[2] = obj.etag ? CStringGetTextDatum(obj.etag) : (Datum) 0;
		nulls[2] = obj.etag == NULL;
		values[3] = obj.content_type ? CStringGetTextDatum(obj.content_type) : (Datum) 0;
		nulls[3] = obj.content_type == NULL;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * dms_s3_get_object
 *		s3_get_object(endpoint_name, key, range_start, range_end): the bytes
 *		of the object, or of the inclusive byte range.
 */
Datum
dms_s3_get_object(PG_FUNCTION_ARGS)
{
	char	   *name = sql_text_arg(fcinfo, 0, "endpoint_name");
	char	   *key = sql_key_arg(fcinfo, 1, "key");
	int64		range_start = PG_ARGISNULL(2) ? -1 : PG_GETARG_INT64(2);
	int64		range_end = PG_ARGISNULL(3) ? -1 : PG_GETARG_INT64(3);
	DmsEndpoint *ep;
	char	   *data;
	size_t		len;
	bytea	   *result;

	if ((!PG_ARGISNULL(2) && range_start < 0) || (!PG_ARGISNULL(3) && range_end < 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("range_start and range_end must not be negative"),
				 errhint("They are inclusive byte offsets; NULL means the start or the end of the object.")));

	ep = sql_s3_endpoint(name);
	data = s3_get_object(ep, s3_endpoint_bucket(ep), s3_folder_key(ep, key),
						 range_start, range_end, &len);
	result = (bytea *) palloc(len + VARHDRSZ);
	SET_VARSIZE(result, len + VARHDRSZ);
	memcpy(VARDATA(result), data, len);
	pfree(data);
	PG_RETURN_BYTEA_P(result);
}

/*
 * dms_s3_put_object
 *		s3_put_object(endpoint_name, key, data, content_type): PutObject;
 *		returns the ETag.
 */
Datum
dms_s3_put_object(PG_FUNCTION_ARGS)
{
	char	   *name = sql_text_arg(fcinfo, 0, "endpoint_name");
	char	   *key = sql_key_arg(fcinfo, 1, "key");
	bytea	   *data;
	char	   *content_type = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	DmsEndpoint *ep;
	char	   *etag;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("data must not be NULL"),
				 errhint("Pass ''::bytea for an empty object.")));
	data = PG_GETARG_BYTEA_PP(2);
	ep = sql_s3_endpoint(name);
	etag = s3_put_object(ep, s3_endpoint_bucket(ep), s3_folder_key(ep, key),
						 VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data), content_type);
	PG_RETURN_TEXT_P(cstring_to_text(etag));
}

/*
 * dms_s3_delete_object
 *		s3_delete_object(endpoint_name, key).
 */
Datum
dms_s3_delete_object(PG_FUNCTION_ARGS)
{
	char	   *name = sql_text_arg(fcinfo, 0, "endpoint_name");
	char	   *key = sql_key_arg(fcinfo, 1, "key");
	DmsEndpoint *ep = sql_s3_endpoint(name);

	s3_delete_object(ep, s3_endpoint_bucket(ep), s3_folder_key(ep, key));
	PG_RETURN_VOID();
}

/*
 * sql_return_row
 *		Put one row into the materialized result.
 */
static void
sql_return_row(FunctionCallInfo fcinfo, Datum *values, bool *nulls)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * dms_s3_object_checksum
 *		s3_object_checksum(endpoint_name, key, chunk_bytes): read the object
 *		with the streaming reader; bytes, SHA-256, GET requests, ETag.
 */
Datum
dms_s3_object_checksum(PG_FUNCTION_ARGS)
{
	char	   *name = sql_text_arg(fcinfo, 0, "endpoint_name");
	char	   *key = sql_key_arg(fcinfo, 1, "key");
	int64		chunk_bytes = sql_bytes_arg(fcinfo, 2, S3_DEFAULT_CHUNK_BYTES);
	DmsEndpoint *ep;
	S3Reader   *reader;
	pg_cryptohash_ctx *sha;
	const char *data;
	size_t		len;
	int64		bytes = 0;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	InitMaterializedSRF(fcinfo, 0);
	ep = sql_s3_endpoint(name);
	reader = s3_reader_open(ep, s3_endpoint_bucket(ep), s3_folder_key(ep, key), chunk_bytes);
	sha = sql_sha256_new();
	while (s3_reader_next_chunk(reader, &data, &len))
	{
		sql_sha256_update(sha, data, len);
		bytes += len;
	}
	values[0] = Int64GetDatum(bytes);
	values[1] = CStringGetTextDatum(sql_sha256_hex(sha));
	values[2] = Int32GetDatum(s3_reader_requests(reader));
	values[3] = CStringGetTextDatum(s3_reader_object(reader)->etag);
	s3_reader_close(reader);
	sql_return_row(fcinfo, values, nulls);
	return (Datum) 0;
}

/*
 * dms_s3_copy_object_streamed
 *		s3_copy_object_streamed(endpoint_name, source_key, target_key,
 *		part_size_bytes, chunk_bytes, target_endpoint_name): read with the
 *		streaming reader, write with the multipart writer.
 */
Datum
dms_s3_copy_object_streamed(PG_FUNCTION_ARGS)
{
	char	   *name = sql_text_arg(fcinfo, 0, "endpoint_name");
	char	   *source_key = sql_key_arg(fcinfo, 1, "source_key");
	char	   *target_key = sql_key_arg(fcinfo, 2, "target_key");
	int64		part_bytes = sql_bytes_arg(fcinfo, 3, S3_MIN_PART_BYTES);
	int64		chunk_bytes = sql_bytes_arg(fcinfo, 4, S3_DEFAULT_CHUNK_BYTES);
	char	   *target_name = PG_ARGISNULL(5) ? name : text_to_cstring(PG_GETARG_TEXT_PP(5));
	DmsEndpoint *ep;
	DmsEndpoint *target_ep;
	S3Reader   *reader;
	S3Writer   *writer;
	S3WriterOptions opts;
	pg_cryptohash_ctx *sha;
	const char *data;
	size_t		len;
	char	   *etag;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	InitMaterializedSRF(fcinfo, 0);
	ep = sql_s3_endpoint(name);
	target_ep = strcmp(target_name, name) == 0 ? ep : sql_s3_endpoint(target_name);

	reader = s3_reader_open(ep, s3_endpoint_bucket(ep), s3_folder_key(ep, source_key),
							chunk_bytes);
	memset(&opts, 0, sizeof(opts));
	opts.part_bytes = part_bytes;
	opts.size_hint = s3_reader_object(reader)->size;
	opts.content_type = s3_reader_object(reader)->content_type;
	writer = s3_writer_open(target_ep, s3_endpoint_bucket(target_ep),
							s3_folder_key(target_ep, target_key), &opts);
	sha = sql_sha256_new();
	while (s3_reader_next_chunk(reader, &data, &len))
	{
		sql_sha256_update(sha, data, len);
		s3_writer_write(writer, data, len);
	}
	etag = s3_writer_close(writer);

	values[0] = Int64GetDatum(s3_writer_bytes(writer));
	values[1] = Int32GetDatum(s3_writer_parts(writer));
	values[2] = CStringGetTextDatum(sql_sha256_hex(sha));
	values[3] = CStringGetTextDatum(etag);
	s3_reader_close(reader);
	sql_return_row(fcinfo, values, nulls);
	return (Datum) 0;
}

/*
 * dms_s3_put_generated_object
 *		s3_put_generated_object(endpoint_name, key, bytes, part_size_bytes,
 *		seed): write bytes of pseudo-random data (xoroshiro128** from the
 *		seed, each 64-bit value stored little-endian) with the writer.
 */
Datum
dms_s3_put_generated_object(PG_FUNCTION_ARGS)
{
	char	   *name = sql_text_arg(fcinfo, 0, "endpoint_name");
	char	   *key = sql_key_arg(fcinfo, 1, "key");
	int64		total;
	int64		part_bytes = sql_bytes_arg(fcinfo, 3, S3_MIN_PART_BYTES);
	int64		seed = sql_bytes_arg(fcinfo, 4, 0);
	DmsEndpoint *ep;
	S3Writer   *writer;
	S3WriterOptions opts;
	pg_cryptohash_ctx *sha;
	pg_prng_state prng;
	unsigned char *block;
	int64		left;
	char	   *etag;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	if (PG_ARGISNULL(2) || PG_GETARG_INT64(2) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bytes must be a non-negative number")));
	total = PG_GETARG_INT64(2);

	InitMaterializedSRF(fcinfo, 0);
	ep = sql_s3_endpoint(name);
	memset(&opts, 0, sizeof(opts));
	opts.part_bytes = part_bytes;
	opts.size_hint = total;
	opts.content_type = "application/octet-stream";
	writer = s3_writer_open(ep, s3_endpoint_bucket(ep), s3_folder_key(ep, key), &opts);

	pg_prng_seed(&prng, (uint64) seed);
	block = palloc(SQL_GENERATE_BLOCK);
	sha = sql_sha256_new();
	for (left = total; left > 0;)
	{
		size_t		n = (size_t) Min(left, (int64) SQL_GENERATE_BLOCK);
		size_t		i;

		for (i = 0; i < n; i += 8)
		{
			uint64		v = pg_prng_uint64(&prng);
			int			b;

			for (b = 0; b < 8 && i + b < n; b++)
				block[i + b] = (unsigned char) (v >> (8 * b));
		}
		sql_sha256_update(sha, (const char *) block, n);
		s3_writer_write(writer, block, n);
		left -= n;
		CHECK_FOR_INTERRUPTS();
	}
	etag = s3_writer_close(writer);
	pfree(block);

	values[0] = Int64GetDatum(s3_writer_bytes(writer));
	values[1] = Int32GetDatum(s3_writer_parts(writer));
	values[2] = CStringGetTextDatum(sql_sha256_hex(sha));
	values[3] = CStringGetTextDatum(etag);
	sql_return_row(fcinfo, values, nulls);
	return (Datum) 0;
}

/*
 * dms_s3_object_url
 *		s3_object_url(endpoint_name, key): the URL requests for the object go
 *		to (the bucket's when key is NULL), with the endpoint's addressing.
 */
Datum
dms_s3_object_url(PG_FUNCTION_ARGS)
{
	char	   *name = sql_text_arg(fcinfo, 0, "endpoint_name");
	DmsEndpoint *ep = sql_s3_endpoint(name);
	const char *bucket = s3_endpoint_bucket(ep);
	char	   *url;

	if (PG_ARGISNULL(1))
		url = s3_object_url(ep, bucket, NULL);
	else
		url = s3_object_url(ep, bucket,
							s3_folder_key(ep, sql_key_arg(fcinfo, 1, "key")));
	PG_RETURN_TEXT_P(cstring_to_text(url));
}
