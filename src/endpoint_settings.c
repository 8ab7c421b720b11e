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
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
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

/* Why a key is accepted without effect (see SettingSpec.no_effect). */
#define NE_S3_TARGET "an S3 target setting; an S3 source reads the objects as they are"
#define NE_S3_CSV_OUT "a setting for CSV files written to an S3 target; delta extracts write Parquet"
#define NE_S3_CDC_OUT "a setting for change files written to an S3 target; delta extracts write full and incremental extracts, not change files"
#define NE_S3_SOURCE "an S3 source setting; an S3 target writes files"
#define NE_GLUE "dms_stream does not write an AWS Glue Data Catalog"
#define NE_TZ "date folders are named in UTC"
#define NE_PG_CONN "a connection setting; the postgres source is this database, read in-process"
#define NE_PG_DDL "DMS's DDL capture with event triggers; dms_stream takes table changes from the WAL (TRUNCATE, columns added, dropped or renamed) and DROP TABLE from an event trigger of its own"
#define NE_PG_TARGET "a setting for PostgreSQL as a DMS target"

static const char *const pg_plugins[] = {"no-preference", "test-decoding", "pglogical", NULL};
static const char *const pg_long_varchar[] = {"wstring", "clob", "nclob", NULL};
static const char *const pg_database_modes[] = {"default", "babelfish", NULL};
static const char *const pg_auth_methods[] = {"password", "iam", NULL};

/*
 * Every key of the S3Settings API object, for an S3 source.  Keys that only
 * shape what an S3 target writes are accepted without effect, so that
 * settings as describe-endpoints prints them (with every default) paste.
 */
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
	{"DataFormat", SETTING_ENUM, 0, 0, data_format_csv},
	{"ServiceAccessRoleArn", SETTING_STRING},
	/* dms_stream's own: the AssumeRole call for ServiceAccessRoleArn */
	{"ServiceAccessRoleExternalId", SETTING_STRING},
	{"ServiceAccessRoleSessionName", SETTING_STRING},
	{"ServiceAccessRoleDurationSeconds", SETTING_INT, 900, 43200},
	{"CompressionType", SETTING_ENUM, 0, 0, compression_types, NE_S3_TARGET, "none"},
	{"EncryptionMode", SETTING_ENUM, 0, 0, encryption_modes, NE_S3_TARGET},
	{"ServerSideEncryptionKmsKeyId", SETTING_STRING, .no_effect = NE_S3_TARGET},
	{"EncodingType", SETTING_ENUM, 0, 0, encoding_types, NE_S3_TARGET},
	{"DictPageSizeLimit", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_S3_TARGET},
	{"RowGroupLength", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_S3_TARGET},
	{"DataPageSize", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_S3_TARGET},
	{"ParquetVersion", SETTING_ENUM, 0, 0, parquet_versions, NE_S3_TARGET},
	{"EnableStatistics", SETTING_BOOL, .no_effect = NE_S3_TARGET},
	{"IncludeOpForFullLoad", SETTING_BOOL, .no_effect = "full-load rows are recognised with or without a leading I column", .same_as = "false"},
	{"CdcInsertsOnly", SETTING_BOOL, .no_effect = NE_S3_TARGET},
	{"CdcInsertsAndUpdates", SETTING_BOOL, .no_effect = NE_S3_TARGET},
	{"TimestampColumnName", SETTING_STRING, .no_effect = NE_S3_TARGET},
	{"ParquetTimestampInMillisecond", SETTING_BOOL, .no_effect = NE_S3_TARGET},
	{"DatePartitionEnabled", SETTING_BOOL, .no_effect = NE_S3_TARGET},
	{"DatePartitionSequence", SETTING_ENUM, 0, 0, date_partition_sequences, NE_S3_TARGET},
	{"DatePartitionDelimiter", SETTING_ENUM, 0, 0, date_partition_delimiters, NE_S3_TARGET},
	{"DatePartitionTimezone", SETTING_STRING, .no_effect = NE_S3_TARGET},
	{"UseCsvNoSupValue", SETTING_BOOL, .no_effect = NE_S3_TARGET},
	{"CsvNoSupValue", SETTING_STRING, .no_effect = NE_S3_TARGET},
	{"PreserveTransactions", SETTING_BOOL, .no_effect = NE_S3_TARGET},
	{"UseTaskStartTimeForFullLoadTimestamp", SETTING_BOOL, .no_effect = NE_S3_TARGET},
	{"CannedAclForObjects", SETTING_ENUM, 0, 0, canned_acls, NE_S3_TARGET},
	{"AddColumnName", SETTING_BOOL, .no_effect = NE_S3_TARGET},
	{"CdcMaxBatchInterval", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_S3_TARGET},
	{"CdcMinFileSize", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_S3_TARGET},
	{"MaxFileSize", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_S3_TARGET},
	{"AddTrailingPaddingCharacter", SETTING_BOOL, .no_effect = NE_S3_TARGET},
	{"GlueCatalogGeneration", SETTING_BOOL, .no_effect = NE_GLUE},
	{NULL}
};

/* Every key of the S3Settings API object, for an S3 target (delta extracts). */
static const SettingSpec s3_target_specs[] = {
	{"BucketName", SETTING_NONEMPTY},
	{"BucketFolder", SETTING_STRING},
	{"DataFormat", SETTING_ENUM, 0, 0, data_format_parquet},
	{"ParquetVersion", SETTING_ENUM, 0, 0, parquet_versions, "files are written with version 1 data pages and the logical types of the type mapping", "parquet-1-0"},
	{"CompressionType", SETTING_ENUM, 0, 0, compression_types},
	{"EncodingType", SETTING_ENUM, 0, 0, encoding_types},
	{"DataPageSize", SETTING_INT, 1024, 1024 * 1024 * 1024},
	{"DictPageSizeLimit", SETTING_INT, 1024, 1024 * 1024 * 1024},
	{"RowGroupLength", SETTING_INT, 1, 64 * 1024 * 1024},
	{"EnableStatistics", SETTING_BOOL, .no_effect = "column chunk statistics (min, max, null count) are always written", .same_as = "true"},
	{"ParquetTimestampInMillisecond", SETTING_BOOL, .no_effect = "timestamps are always written in microseconds (TIMESTAMP_MICROS)", .same_as = "false"},
	{"MaxFileSize", SETTING_INT, 1, 1048576},
	{"DatePartitionEnabled", SETTING_BOOL},
	{"DatePartitionSequence", SETTING_ENUM, 0, 0, date_partition_sequences},
	{"DatePartitionDelimiter", SETTING_ENUM, 0, 0, date_partition_delimiters},
	{"DatePartitionTimezone", SETTING_STRING, .no_effect = NE_TZ, .same_as = "utc"},
	{"EncryptionMode", SETTING_ENUM, 0, 0, encryption_modes},
	{"ServerSideEncryptionKmsKeyId", SETTING_STRING},
	{"CannedAclForObjects", SETTING_ENUM, 0, 0, canned_acls},
	{"ExpectedBucketOwner", SETTING_NONEMPTY},
	{"ServiceAccessRoleArn", SETTING_STRING},
	/* dms_stream's own: the AssumeRole call for ServiceAccessRoleArn */
	{"ServiceAccessRoleExternalId", SETTING_STRING},
	{"ServiceAccessRoleSessionName", SETTING_STRING},
	{"ServiceAccessRoleDurationSeconds", SETTING_INT, 900, 43200},
	{"ExternalTableDefinition", SETTING_ANY, .no_effect = NE_S3_SOURCE},
	{"CdcPath", SETTING_STRING, .no_effect = NE_S3_CDC_OUT},
	{"IgnoreHeaderRows", SETTING_INT, 0, 1, .no_effect = NE_S3_SOURCE},
	{"CsvDelimiter", SETTING_STRING, .no_effect = NE_S3_CSV_OUT},
	{"CsvRowDelimiter", SETTING_STRING, .no_effect = NE_S3_CSV_OUT},
	{"CsvNullValue", SETTING_STRING, .no_effect = NE_S3_CSV_OUT},
	{"Rfc4180", SETTING_BOOL_YN, .no_effect = NE_S3_CSV_OUT},
	{"AddColumnName", SETTING_BOOL, .no_effect = NE_S3_CSV_OUT},
	{"UseCsvNoSupValue", SETTING_BOOL, .no_effect = NE_S3_CSV_OUT},
	{"CsvNoSupValue", SETTING_STRING, .no_effect = NE_S3_CSV_OUT},
	{"AddTrailingPaddingCharacter", SETTING_BOOL, .no_effect = NE_S3_CSV_OUT},
	{"IncludeOpForFullLoad", SETTING_BOOL, .no_effect = NE_S3_CDC_OUT},
	{"CdcInsertsOnly", SETTING_BOOL, .no_effect = NE_S3_CDC_OUT},
	{"CdcInsertsAndUpdates", SETTING_BOOL, .no_effect = NE_S3_CDC_OUT},
	{"CdcMaxBatchInterval", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_S3_CDC_OUT},
	{"CdcMinFileSize", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_S3_CDC_OUT},
	{"PreserveTransactions", SETTING_BOOL, .no_effect = NE_S3_CDC_OUT},
	{"TimestampColumnName", SETTING_STRING, .no_effect = "extracts hold the source table's columns only; add a timestamp column to the table or a view"},
	{"UseTaskStartTimeForFullLoadTimestamp", SETTING_BOOL, .no_effect = NE_S3_CDC_OUT},
	{"GlueCatalogGeneration", SETTING_BOOL, .no_effect = NE_GLUE},
	{NULL}
};

/* Every key of the KinesisSettings API object (and StreamName). */
static const SettingSpec kinesis_specs[] = {
	{"StreamArn", SETTING_NONEMPTY},
	{"StreamName", SETTING_NONEMPTY},
	{"MessageFormat", SETTING_ENUM, 0, 0, message_formats},
	{"ServiceAccessRoleArn", SETTING_STRING},
	/* dms_stream's own: the AssumeRole call for ServiceAccessRoleArn */
	{"ServiceAccessRoleExternalId", SETTING_STRING},
	{"ServiceAccessRoleSessionName", SETTING_STRING},
	{"ServiceAccessRoleDurationSeconds", SETTING_INT, 900, 43200},
	{"IncludeTransactionDetails", SETTING_BOOL},
	{"IncludePartitionValue", SETTING_BOOL},
	{"PartitionIncludeSchemaTable", SETTING_BOOL},
	{"IncludeTableAlterOperations", SETTING_BOOL},
	{"IncludeControlDetails", SETTING_BOOL},
	{"IncludeNullAndEmpty", SETTING_BOOL},
	{"NoHexPrefix", SETTING_BOOL},
	{"UseLargeIntegerValue", SETTING_BOOL, .no_effect = "integers are always written with every digit, never in scientific notation", .same_as = "true"},
	{NULL}
};

/* Every key of the PostgreSQLSettings API object, for this database as source. */
static const SettingSpec postgres_specs[] = {
	{"SlotName", SETTING_NONEMPTY},
	{"HeartbeatEnable", SETTING_BOOL},
	{"HeartbeatFrequency", SETTING_INT, 1, 24 * 60},
	{"HeartbeatSchema", SETTING_NONEMPTY},
	/* dms_stream's own: false sends partitions under their own names */
	{"PublishViaPartitionRoot", SETTING_BOOL},
	{"DatabaseName", SETTING_STRING, .no_effect = NE_PG_CONN},
	{"ServerName", SETTING_STRING, .no_effect = NE_PG_CONN},
	{"Port", SETTING_INT, 0, 65535, .no_effect = NE_PG_CONN},
	{"Username", SETTING_STRING, .no_effect = NE_PG_CONN},
	{"AuthenticationMethod", SETTING_ENUM, 0, 0, pg_auth_methods, NE_PG_CONN},
	{"SecretsManagerAccessRoleArn", SETTING_STRING, .no_effect = NE_PG_CONN},
	{"SecretsManagerSecretId", SETTING_STRING, .no_effect = NE_PG_CONN},
	{"ServiceAccessRoleArn", SETTING_STRING, .no_effect = NE_PG_CONN},
	{"AfterConnectScript", SETTING_STRING, .no_effect = NE_PG_CONN},
	{"ExecuteTimeout", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_PG_CONN},
	{"CaptureDdls", SETTING_BOOL, .no_effect = NE_PG_DDL},
	{"DdlArtifactsSchema", SETTING_STRING, .no_effect = NE_PG_DDL},
	{"PluginName", SETTING_ENUM, 0, 0, pg_plugins, "changes are decoded with dms_stream's own output plugin", "no-preference"},
	{"MaxFileSize", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_PG_TARGET},
	{"FailTasksOnLobTruncation", SETTING_BOOL, .no_effect = "large values are sent whole (TOASTed values are fetched), never truncated"},
	{"MapBooleanAsBoolean", SETTING_BOOL, .no_effect = "booleans are always written as JSON booleans", .same_as = "true"},
	{"MapJsonbAsClob", SETTING_BOOL, .no_effect = "json and jsonb are always CLOB (their text)", .same_as = "true"},
	{"MapLongVarcharAs", SETTING_ENUM, 0, 0, pg_long_varchar, "unbounded varchar is always CLOB", "clob"},
	{"TrimSpaceInChar", SETTING_BOOL, .no_effect = "char(n) values are sent as stored, with their padding", .same_as = "false"},
	{"DatabaseMode", SETTING_ENUM, 0, 0, pg_database_modes, NE_PG_CONN, "default"},
	{"BabelfishDatabaseName", SETTING_STRING, .no_effect = NE_PG_CONN},
	{"DisableUnicodeSourceFilter", SETTING_BOOL, .no_effect = "tables are selected by the table-mapping rules as written"},
	{"Password", SETTING_ANY},	/* refused in validate_postgres */
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
 * check_role_settings
 *		ServiceAccessRoleArn (an IAM role ARN) and the dms_stream keys of its
 *		AssumeRole call, with STS's own limits on the external id and the
 *		session name.
 */
static void
check_role_settings(const DmsJsonDoc *doc, json_t *obj)
{
	const char *arn = dms_json_get_string(doc, obj, "", "ServiceAccessRoleArn", false, true);
	const char *ext = dms_json_get_string(doc, obj, "", "ServiceAccessRoleExternalId", false, true);
	const char *session = dms_json_get_string(doc, obj, "", "ServiceAccessRoleSessionName", false, true);
	const char *p;

	if (arn && *arn && (strncmp(arn, "arn:", 4) != 0 || strstr(arn, ":role/") == NULL || strlen(arn) > 2048))
		dms_json_fail(doc, "ServiceAccessRoleArn",
					  "Write the role's ARN, e.g. arn:aws:iam::123456789012:role/dms-access; an empty string means no role.",
					  "\"%s\" is not an IAM role ARN.", arn);
	if ((ext && *ext) || (session && *session))
	{
		if (arn == NULL || *arn == '\0')
			dms_json_fail(doc, ext && *ext ? "ServiceAccessRoleExternalId" : "ServiceAccessRoleSessionName",
						  "Give \"ServiceAccessRoleArn\" too, or remove this key.",
						  "This key applies to the AssumeRole call of ServiceAccessRoleArn, which is not set.");
	}
	if (ext && *ext)
	{
		for (p = ext; *p; p++)
			if (!isalnum((unsigned char) *p) && strchr("_+=,.@:/-", *p) == NULL)
				break;
		if (strlen(ext) < 2 || strlen(ext) > 1224 || *p)
			dms_json_fail(doc, "ServiceAccessRoleExternalId",
						  "STS accepts 2 to 1224 letters, digits and _+=,.@:/- in an external id.",
						  "Invalid external id \"%s\".", ext);
	}
	if (session && *session)
	{
		for (p = session; *p; p++)
			if (!isalnum((unsigned char) *p) && strchr("_+=,.@-", *p) == NULL)
				break;
		if (strlen(session) < 2 || strlen(session) > 64 || *p)
			dms_json_fail(doc, "ServiceAccessRoleSessionName",
						  "STS accepts 2 to 64 letters, digits and _+=,.@- in a role session name.",
						  "Invalid role session name \"%s\".", session);
	}
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
	check_role_settings(doc, obj);
	check_bucket_name(doc, dms_json_get_string(doc, obj, "", "BucketName", true, false));
	s3_check_key_segments("S3Settings.BucketFolder",
						  dms_json_get_string(doc, obj, "", "BucketFolder", false, true), S3_SEGMENTS_TRIM);
	s3_check_key_segments("S3Settings.CdcPath",
						  dms_json_get_string(doc, obj, "", "CdcPath", false, true), S3_SEGMENTS_TRIM);
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
		char	   *text = dms_json_dumps(etd, JSON_COMPACT, "the external table definition");

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
	settings_validate(doc, obj, "", s3_target_specs);
	check_role_settings(doc, obj);
	check_bucket_name(doc, dms_json_get_string(doc, obj, "", "BucketName", true, false));
	s3_check_key_segments("S3Settings.BucketFolder",
						  dms_json_get_string(doc, obj, "", "BucketFolder", false, true), S3_SEGMENTS_TRIM);
	if (json_object_get(obj, "ExpectedBucketOwner"))
		check_account_id(doc, json_string_value(json_object_get(obj, "ExpectedBucketOwner")));
	if (json_object_get(obj, "ServerSideEncryptionKmsKeyId") &&
		json_string_length(json_object_get(obj, "ServerSideEncryptionKmsKeyId")) > 0 &&
		(!json_object_get(obj, "EncryptionMode") ||
		 pg_strcasecmp(json_string_value(json_object_get(obj, "EncryptionMode")), "sse-kms") != 0))
		dms_json_fail(doc, "ServerSideEncryptionKmsKeyId",
					  "Set \"EncryptionMode\": \"sse-kms\" to use a KMS key.",
					  "ServerSideEncryptionKmsKeyId needs EncryptionMode sse-kms.");
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
	check_role_settings(doc, obj);
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
	if (json_object_get(obj, "Password"))
		dms_json_fail(doc, "Password",
					  "Remove \"Password\": endpoint settings are readable by every role, and this database needs no password to read its own changes.",
					  "A password does not belong in the settings of the postgres source.");
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
 * settings_document
 *		The name of the settings document of an engine and endpoint type
 *		(ERROR for a pair dms_stream does not support) and its specs.
 */
static const char *
settings_document(const char *engine, const char *endpoint_type, const SettingSpec **specs)
{
	if (strcmp(engine, "s3") == 0 && strcmp(endpoint_type, "source") == 0)
	{
		*specs = s3_source_specs;
		return "S3Settings";
	}
	if (strcmp(engine, "s3") == 0 && strcmp(endpoint_type, "target") == 0)
	{
		*specs = s3_target_specs;
		return "S3Settings";
	}
	if (strcmp(engine, "kinesis") == 0 && strcmp(endpoint_type, "target") == 0)
	{
		*specs = kinesis_specs;
		return "KinesisSettings";
	}
	if (strcmp(engine, "postgres") == 0 && strcmp(endpoint_type, "source") == 0)
	{
		*specs = postgres_specs;
		return "PostgreSQL source settings";
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("engine \"%s\" cannot be used as a %s endpoint", engine, endpoint_type),
			 errdetail("dms_stream supports s3 as source or target, kinesis as target and postgres (this database) as source."),
			 errhint("Check the engine and endpoint_type arguments.")));
	return NULL;				/* keep compiler quiet */
}

/*
 * collect_no_effect
 *		The keys of validated settings obj without effect, with the date
 *		partition keys of an S3 target whose DatePartitionEnabled is not true.
 */
static List *
collect_no_effect(const char *engine, const char *endpoint_type, const json_t *obj,
				  const SettingSpec *specs)
{
	List	   *list = NIL;
	json_t	   *enabled = json_object_get(obj, "DatePartitionEnabled");

	settings_no_effect(obj, "", specs, &list);
	if (specs == s3_target_specs &&
		!(enabled != NULL && (json_is_true(enabled) ||
							  (json_is_string(enabled) &&
							   pg_strcasecmp(json_string_value(enabled), "true") == 0))))
	{
		static const char *const keys[] = {"DatePartitionSequence", "DatePartitionDelimiter", NULL};
		int			i;

		for (i = 0; keys[i] != NULL; i++)
			if (json_object_get(obj, keys[i]) && !json_is_null(json_object_get(obj, keys[i])))
			{
				SettingNoEffect *item = palloc(sizeof(SettingNoEffect));

				item->key = keys[i];
				item->reason = "DatePartitionEnabled is not true";
				list = lappend(list, item);
			}
	}
	return list;
}

/*
 * report_no_effect
 *		One NOTICE naming the keys accepted without effect.
 */
static void
report_no_effect(const char *what, List *list)
{
	StringInfoData keys;
	StringInfoData why;
	ListCell   *lc;

	if (list == NIL)
		return;
	initStringInfo(&keys);
	initStringInfo(&why);
	foreach(lc, list)
	{
		SettingNoEffect *item = lfirst(lc);
		ListCell   *lc2;
		bool		first = true;

		appendStringInfo(&keys, "%s%s", keys.len ? ", " : "", item->key);
		/* The detail: each reason once, after the keys it applies to. */
		foreach(lc2, list)
		{
			SettingNoEffect *other = lfirst(lc2);

			if (other == item)
				break;
			if (strcmp(other->reason, item->reason) == 0)
				first = false;
		}
		if (!first)
			continue;
		appendStringInfo(&why, "%s", why.len ? "\n" : "");
		for_each_cell(lc2, list, lc)
		{
			SettingNoEffect *other = lfirst(lc2);

			if (strcmp(other->reason, item->reason) == 0)
				appendStringInfo(&why, "%s%s", other == item ? "" : ", ", other->key);
		}
		appendStringInfo(&why, ": %s.", item->reason);
	}
	ereport(NOTICE,
			(errmsg("%s: %d key%s accepted without effect here: %s",
					what, list_length(list), list_length(list) == 1 ? "" : "s", keys.data),
			 errdetail_internal("%s", why.data),
			 errhint("They are kept as given; dms_stream.endpoint_settings_without_effect lists them per endpoint.")));
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
	const SettingSpec *specs;

	doc.what = settings_document(engine, endpoint_type, &specs);
	obj = dms_json_from_jsonb(&doc, settings);
	dms_json_expect_object(&doc, obj, "");

	if (specs == s3_source_specs)
		validate_s3_source(&doc, obj);
	else if (specs == s3_target_specs)
		validate_s3_target(&doc, obj);
	else if (specs == kinesis_specs)
		validate_kinesis(&doc, obj);
	else
		validate_postgres(&doc, obj);

	report_no_effect(doc.what, collect_no_effect(engine, endpoint_type, obj, specs));
}

/*
 * endpoint_settings_no_effect
 *		See settings_spec.h.
 */
List *
endpoint_settings_no_effect(const char *engine, const char *endpoint_type, Jsonb *settings)
{
	DmsJsonDoc	doc;
	json_t	   *obj;
	const SettingSpec *specs;

	doc.what = settings_document(engine, endpoint_type, &specs);
	obj = dms_json_from_jsonb(&doc, settings);
	if (!json_is_object(obj))
		return NIL;
	return collect_no_effect(engine, endpoint_type, obj, specs);
}
