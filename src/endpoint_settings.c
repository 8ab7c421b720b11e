/*-------------------------------------------------------------------------
 *
 * endpoint_settings.c
 *	  Validate endpoint settings written in DMS's own key spelling.
 *
 * Supported engine and endpoint-type pairs:
 *	  s3 / source		S3Settings of an S3 source (CSV files + external table
 *						definition)
 *	  s3 / target		S3Settings of an S3 target (Parquet delta extracts)
 *	  kinesis / target	KinesisSettings
 *	  postgres / source this database, captured by logical decoding
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "external_table.h"
#include "s3.h"
#include "settings_spec.h"

static const char *const data_format_csv[] = {"csv", NULL};
static const char *const data_format_parquet[] = {"parquet", NULL};
static const char *const parquet_versions[] = {"parquet-1-0", "parquet-2-0", NULL};
static const char *const compression_types[] = {"none", "gzip", "snappy", "zstd", NULL};
static const char *const encoding_types[] = {"plain", "plain-dictionary", "rle-dictionary", NULL};
static const char *const date_partition_sequences[] = {
	"YYYYMMDD", "YYYYMMDDHH", "YYYYMM", "MMYYYYDD", "DDMMYYYY", NULL
};
static const char *const date_partition_delimiters[] = {"SLASH", "UNDERSCORE", "DASH", "NONE", NULL};
static const char *const encryption_modes[] = {"sse-s3", "sse-kms", NULL};
static const char *const canned_acls[] = {
	"none", "private", "public-read", "public-read-write", "authenticated-read",
	"aws-exec-read", "bucket-owner-read", "bucket-owner-full-control", NULL
};
static const char *const message_formats[] = {"json", "json-unformatted", NULL};

static const SettingSpec s3_source_specs[] = {
	{"BucketName", SETTING_NONEMPTY},
	{"BucketFolder", SETTING_STRING},
	{"CdcPath", SETTING_STRING},
	{"CsvDelimiter", SETTING_NONEMPTY},
	{"CsvRowDelimiter", SETTING_NONEMPTY},
	{"IgnoreHeaderRows", SETTING_INT, 0, 1},
	{"Rfc4180", SETTING_BOOL_YN},
	{"CsvNullValue", SETTING_STRING},
	{"ExternalTableDefinition", SETTING_ANY},
	{"ExpectedBucketOwner", SETTING_NONEMPTY},
	{"ServiceAccessRoleArn", SETTING_ANY},
	{"DataFormat", SETTING_ENUM, 0, 0, data_format_csv},
	{NULL}
};

static const SettingSpec s3_target_specs[] = {
	{"BucketName", SETTING_NONEMPTY},
	{"BucketFolder", SETTING_STRING},
	{"DataFormat", SETTING_ENUM, 0, 0, data_format_parquet},
	{"ParquetVersion", SETTING_ENUM, 0, 0, parquet_versions},
	{"CompressionType", SETTING_ENUM, 0, 0, compression_types},
	{"EncodingType", SETTING_ENUM, 0, 0, encoding_types},
	{"DataPageSize", SETTING_INT, 1024, 1024 * 1024 * 1024},
	{"DictPageSizeLimit", SETTING_INT, 1024, 1024 * 1024 * 1024},
	{"RowGroupLength", SETTING_INT, 1, 64 * 1024 * 1024},
	{"EnableStatistics", SETTING_BOOL},
	{"ParquetTimestampInMillisecond", SETTING_BOOL},
	{"MaxFileSize", SETTING_INT, 1, 1048576},
	{"DatePartitionEnabled", SETTING_BOOL},
	{"DatePartitionSequence", SETTING_ENUM, 0, 0, date_partition_sequences},
	{"DatePartitionDelimiter", SETTING_ENUM, 0, 0, date_partition_delimiters},
	{"EncryptionMode", SETTING_ENUM, 0, 0, encryption_modes},
	{"ServerSideEncryptionKmsKeyId", SETTING_NONEMPTY},
	{"CannedAclForObjects", SETTING_ENUM, 0, 0, canned_acls},
	{"ExpectedBucketOwner", SETTING_NONEMPTY},
	{"ServiceAccessRoleArn", SETTING_ANY},
	{NULL}
};

static const SettingSpec kinesis_specs[] = {
	{"StreamArn", SETTING_NONEMPTY},
	{"StreamName", SETTING_NONEMPTY},
	{"MessageFormat", SETTING_ENUM, 0, 0, message_formats},
	{"ServiceAccessRoleArn", SETTING_ANY},
	{"IncludeTransactionDetails", SETTING_BOOL},
	{"IncludePartitionValue", SETTING_BOOL},
	{"PartitionIncludeSchemaTable", SETTING_BOOL},
	{"IncludeTableAlterOperations", SETTING_BOOL},
	{"IncludeControlDetails", SETTING_BOOL},
	{"IncludeNullAndEmpty", SETTING_BOOL},
	{"NoHexPrefix", SETTING_BOOL},
	{"UseLargeIntegerValue", SETTING_BOOL},
	{NULL}
};

static const SettingSpec postgres_specs[] = {
	{"SlotName", SETTING_NONEMPTY},
	{"HeartbeatEnable", SETTING_BOOL},
	{"HeartbeatFrequency", SETTING_INT, 1, 24 * 60},
	{"HeartbeatSchema", SETTING_NONEMPTY},
	{NULL}
};

/*
 * check_bucket_name
 *		S3 bucket naming rules: 3-63 characters of lower-case letters, digits,
 *		dots and hyphens, beginning and ending with a letter or digit.
 */
static void
check_bucket_name(const DmsJsonDoc *doc, const char *name)
{
	size_t		len = strlen(name);
	const char *p;
	bool		ok = (len >= 3 && len <= 63);

	for (p = name; ok && *p; p++)
		if (!(islower((unsigned char) *p) || isdigit((unsigned char) *p) ||
			  *p == '.' || *p == '-'))
			ok = false;
	if (ok && !(isalnum((unsigned char) name[0]) && isalnum((unsigned char) name[len - 1])))
		ok = false;
	if (!ok)
		dms_json_fail(doc, "BucketName",
					  "Bucket names have 3 to 63 characters: lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit.",
					  "\"%s\" is not a valid S3 bucket name.", name);
}

/*
 * check_account_id
 *		ExpectedBucketOwner is a 12-digit AWS account id.
 */
static void
check_account_id(const DmsJsonDoc *doc, const char *id)
{
	const char *p;
	bool		ok = (strlen(id) == 12);

	for (p = id; ok && *p; p++)
		ok = isdigit((unsigned char) *p);
	if (!ok)
		dms_json_fail(doc, "ExpectedBucketOwner",
					  "Write the 12-digit AWS account id of the bucket owner, as a string.",
					  "\"%s\" is not a 12-digit account id.", id);
}

/*
 * check_stream_arn
 *		arn:PARTITION:kinesis:REGION:ACCOUNT:stream/NAME
 */
static void
check_stream_arn(const DmsJsonDoc *doc, const char *arn)
{
	char	   *copy = pstrdup(arn);
	char	   *fields[6];
	int			n = 0;
	char	   *p = copy;

	while (n < 5 && p != NULL)
	{
		fields[n++] = p;
		p = strchr(p, ':');
		if (p)
			*p++ = '\0';
	}
	if (n == 5 && p != NULL)
		fields[n++] = p;

	if (n != 6 || strcmp(fields[0], "arn") != 0 || strncmp(fields[1], "aws", 3) != 0 ||
		strcmp(fields[2], "kinesis") != 0 || fields[3][0] == '\0' ||
		strncmp(fields[5], "stream/", 7) != 0 || fields[5][7] == '\0')
		dms_json_fail(doc, "StreamArn",
					  "Write the stream ARN as arn:aws:kinesis:REGION:ACCOUNT:stream/NAME, or give StreamName instead.",
					  "\"%s\" is not a Kinesis stream ARN.", arn);
}

/*
 * validate_s3_source
 *		S3 source: bucket, CSV format and the external table definition.
 */
static void
validate_s3_source(const DmsJsonDoc *doc, json_t *obj)
{
	json_t	   *etd;
	const char *delim;
	const char *row_delim;

	settings_validate(doc, obj, "", s3_source_specs);
	check_bucket_name(doc, dms_json_get_string(doc, obj, "", "BucketName", true, false));
	s3_check_key_segments("S3Settings.BucketFolder",
						  dms_json_get_string(doc, obj, "", "BucketFolder", false, false), S3_SEGMENTS_TRIM);
	s3_check_key_segments("S3Settings.CdcPath",
						  dms_json_get_string(doc, obj, "", "CdcPath", false, false), S3_SEGMENTS_TRIM);
	if (json_object_get(obj, "ExpectedBucketOwner"))
		check_account_id(doc, json_string_value(json_object_get(obj, "ExpectedBucketOwner")));

	delim = dms_json_get_string(doc, obj, "", "CsvDelimiter", false, false);
	row_delim = dms_json_get_string(doc, obj, "", "CsvRowDelimiter", false, false);
	if (delim && row_delim && strcmp(delim, row_delim) == 0)
		dms_json_fail(doc, "CsvDelimiter",
					  "Use different column and row delimiters, e.g. \",\" and \"\\n\".",
					  "CsvDelimiter and CsvRowDelimiter are both \"%s\".", delim);
	if (delim && strchr(delim, '"') != NULL)
		dms_json_fail(doc, "CsvDelimiter",
					  "The double quote is the RFC 4180 quote character; choose another delimiter.",
					  "CsvDelimiter must not contain '\"'.");

	etd = json_object_get(obj, "ExternalTableDefinition");
	if (etd == NULL || json_is_null(etd))
		dms_json_fail(doc, "ExternalTableDefinition",
					  "An S3 source needs the DMS external table definition JSON; register it with dms_stream.register_external_table_definition().",
					  "Required key \"ExternalTableDefinition\" is missing.");
	if (json_is_string(etd))
		external_table_definition_parse(json_string_value(etd), json_string_length(etd),
										"external table definition in S3Settings.ExternalTableDefinition");
	else if (json_is_object(etd))
	{
		char	   *text = json_dumps(etd, JSON_COMPACT);

		external_table_definition_parse(text, strlen(text),
										"external table definition in S3Settings.ExternalTableDefinition");
	}
	else
		dms_json_fail(doc, "ExternalTableDefinition",
					  "Give the definition as a JSON string (as the DMS API does) or as a JSON object.",
					  "Expected a string or an object but found %s.", dms_json_kind(etd));
}

/*
 * validate_s3_target
 *		S3 target for Parquet delta extracts.
 */
static void
validate_s3_target(const DmsJsonDoc *doc, json_t *obj)
{
	bool		b;

	settings_validate(doc, obj, "", s3_target_specs);
	check_bucket_name(doc, dms_json_get_string(doc, obj, "", "BucketName", true, false));
	s3_check_key_segments("S3Settings.BucketFolder",
						  dms_json_get_string(doc, obj, "", "BucketFolder", false, false), S3_SEGMENTS_TRIM);
	if (json_object_get(obj, "ExpectedBucketOwner"))
		check_account_id(doc, json_string_value(json_object_get(obj, "ExpectedBucketOwner")));
	if (json_object_get(obj, "ServerSideEncryptionKmsKeyId") &&
		(!json_object_get(obj, "EncryptionMode") ||
		 pg_strcasecmp(json_string_value(json_object_get(obj, "EncryptionMode")), "sse-kms") != 0))
		dms_json_fail(doc, "ServerSideEncryptionKmsKeyId",
					  "Set \"EncryptionMode\": \"sse-kms\" to use a KMS key.",
					  "ServerSideEncryptionKmsKeyId needs EncryptionMode sse-kms.");
	if (!dms_json_get_bool(doc, obj, "", "DatePartitionEnabled", false, false, &b) || !b)
	{
		if (json_object_get(obj, "DatePartitionSequence") || json_object_get(obj, "DatePartitionDelimiter"))
			dms_json_fail(doc, json_object_get(obj, "DatePartitionSequence") ? "DatePartitionSequence" : "DatePartitionDelimiter",
						  "Set \"DatePartitionEnabled\": true, or remove the date partition settings.",
						  "Date partition settings need DatePartitionEnabled true.");
	}
}

/*
 * validate_kinesis
 *		Kinesis target: exactly one of StreamArn and StreamName.
 */
static void
validate_kinesis(const DmsJsonDoc *doc, json_t *obj)
{
	const char *arn;
	const char *name;

	settings_validate(doc, obj, "", kinesis_specs);
	arn = dms_json_get_string(doc, obj, "", "StreamArn", false, false);
	name = dms_json_get_string(doc, obj, "", "StreamName", false, false);
	if (arn == NULL && name == NULL)
		dms_json_fail(doc, "StreamArn",
					  "Give \"StreamArn\" (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME) or \"StreamName\".",
					  "A Kinesis endpoint needs the stream it writes to.");
	if (arn != NULL && name != NULL)
		dms_json_fail(doc, "StreamName",
					  "Keep only one of them.",
					  "StreamArn and StreamName are both given.");
	if (arn != NULL)
		check_stream_arn(doc, arn);
}

/*
 * validate_postgres
 *		This database as a source.
 */
static void
validate_postgres(const DmsJsonDoc *doc, json_t *obj)
{
	const char *slot;
	const char *p;

	settings_validate(doc, obj, "", postgres_specs);
	slot = dms_json_get_string(doc, obj, "", "SlotName", false, false);
	if (slot != NULL)
	{
		bool		ok = strlen(slot) < NAMEDATALEN;

		for (p = slot; ok && *p; p++)
			ok = (islower((unsigned char) *p) || isdigit((unsigned char) *p) || *p == '_');
		if (!ok)
			dms_json_fail(doc, "SlotName",
						  "Replication slot names may contain only lower-case letters, digits and underscores, up to 63 characters.",
						  "\"%s\" is not a valid replication slot name.", slot);
	}
}

/*
 * endpoint_settings_validate
 *		Validate settings for the engine/type pair.
 */
void
endpoint_settings_validate(const char *engine, const char *endpoint_type, Jsonb *settings)
{
	DmsJsonDoc	doc;
	json_t	   *obj;

	if (strcmp(engine, "s3") == 0 && strcmp(endpoint_type, "source") == 0)
		doc.what = "S3Settings";
	else if (strcmp(engine, "s3") == 0 && strcmp(endpoint_type, "target") == 0)
		doc.what = "S3Settings";
	else if (strcmp(engine, "kinesis") == 0 && strcmp(endpoint_type, "target") == 0)
		doc.what = "KinesisSettings";
	else if (strcmp(engine, "postgres") == 0 && strcmp(endpoint_type, "source") == 0)
		doc.what = "PostgreSQL source settings";
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("engine \"%s\" cannot be used as a %s endpoint", engine, endpoint_type),
				 errdetail("dms_stream supports s3 as source or target, kinesis as target and postgres (this database) as source."),
				 errhint("Check the engine and endpoint_type arguments.")));

	obj = dms_json_from_jsonb(&doc, settings);
	dms_json_expect_object(&doc, obj, "");

	if (strcmp(engine, "s3") == 0)
	{
		if (strcmp(endpoint_type, "source") == 0)
			validate_s3_source(&doc, obj);
		else
			validate_s3_target(&doc, obj);
	}
	else if (strcmp(engine, "kinesis") == 0)
		validate_kinesis(&doc, obj);
	else
		validate_postgres(&doc, obj);

	if (json_object_get(obj, "ServiceAccessRoleArn"))
		ereport(NOTICE,
				(errmsg("%s.ServiceAccessRoleArn is not used by dms_stream", doc.what),
				 errdetail("dms_stream signs requests with the endpoint's credentials or the AWS credential chain of the database server."),
				 errhint("Store keys with dms_stream.set_endpoint_credentials(), or give the server an instance or container role.")));
}
