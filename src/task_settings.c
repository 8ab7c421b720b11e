/*-------------------------------------------------------------------------
 *
 * task_settings.c
 *	  Validate DMS task settings JSON.
 *
 * The sections and keys are those of the DMS user guide's task settings
 * pages.  Keys dms_stream acts on are type- and range-checked; documented
 * DMS keys it has no use for are accepted as they are, so a DMS user can
 * paste the settings of an existing task.  Unknown keys are errors.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "settings_spec.h"

static const char *const prep_modes[] = {"DO_NOTHING", "DROP_AND_CREATE", "TRUNCATE_BEFORE_LOAD", NULL};
static const char *const record_policies[] = {"IGNORE_RECORD", "LOG_ERROR", "SUSPEND_TABLE", "STOP_TASK", NULL};
static const char *const escalation_policies[] = {"SUSPEND_TABLE", "STOP_TASK", NULL};
static const char *const apply_insert_policies[] = {"IGNORE_RECORD", "LOG_ERROR", "SUSPEND_TABLE", "STOP_TASK", "INSERT_RECORD", NULL};
static const char *const apply_update_policies[] = {"IGNORE_RECORD", "LOG_ERROR", "SUSPEND_TABLE", "STOP_TASK", "UPDATE_RECORD", NULL};
static const char *const apply_escalation_policies[] = {"LOG_ERROR", "SUSPEND_TABLE", "STOP_TASK", NULL};
static const char *const event_policies[] = {"IGNORE", "STOP_TASK", NULL};
static const char *const column_filters[] = {"pk-only", "non-lob", "all", NULL};
static const char *const validation_modes[] = {"ROW_LEVEL", NULL};
static const char *const log_components[] = {
	"FILE_FACTORY", "METADATA_MANAGER", "SORTER", "SOURCE_CAPTURE", "SOURCE_UNLOAD",
	"TABLES_MANAGER", "TARGET_APPLY", "TARGET_LOAD", "TASK_MANAGER", "TRANSFORMATION",
	"VALIDATOR", "VALIDATOR_EXT", "COMMON", "ADDONS", "DATA_STRUCTURE", "COMMUNICATION",
	"FILE_TRANSFER", "IO", "PERFORMANCE", "REST_SERVER", "SERVICE", "ASSERTION",
	"DATA_RECORD", "INFRASTRUCTURE", "METADATA_CHANGES", "TARGET_APPLY_LOB", NULL
};
static const char *const log_severities[] = {
	"LOGGER_SEVERITY_ERROR", "LOGGER_SEVERITY_WARNING", "LOGGER_SEVERITY_INFO",
	"LOGGER_SEVERITY_DEFAULT", "LOGGER_SEVERITY_DEBUG", "LOGGER_SEVERITY_DETAILED_DEBUG", NULL
};

/* Why a task setting is accepted without effect (SettingSpec.no_effect). */
#define NE_TS_SCHEMA "a Kinesis target has no schema; rename with transformation or object-mapping rules"
#define NE_TS_LOB "large values are always sent whole; LobMaxSize (KB) limits the values of S3 sources"
#define NE_TS_FILE "applies to targets loaded from files"
#define NE_TS_QUEUES "requests are sized by ParallelLoadBufferSize and ParallelLoadThreads (full load) and ParallelApplyThreads (CDC)"
#define NE_TS_RECOVERY "checkpoints are kept in dms_stream.task_checkpoint"
#define NE_TS_PREP "a Kinesis target has no tables to prepare or index"
#define NE_TS_CACHED "the full load and the changes after it come from one snapshot; there are no cached changes to stop at"
#define NE_TS_CONSISTENCY "the full load reads one snapshot and does not wait for open transactions"
#define NE_TS_COMMIT "records are sent in requests of ParallelLoadBufferSize"
#define NE_TS_LOG "task messages go to the server log (dms_stream.log_min_messages), run_history and apply_exceptions"
#define NE_TS_CONTROL "dms_stream keeps status, history and suspended tables in its own tables (task_status, run_history, table_statistics)"
#define NE_TS_BUFFER "buffers are sized by dms_stream's settings (e.g. the shipping queue)"
#define NE_TS_TUNING "batch apply does not apply to Kinesis targets; changes are sent in commit order as they are decoded"
#define NE_TS_DDL "TRUNCATE and column changes are sent as control records; IncludeTableAlterOperations chooses which"
#define NE_TS_ERRORS "data errors follow DataErrorPolicy and DataTruncationErrorPolicy; other errors fail the task (network errors are retried first)"
#define NE_TS_VALIDATION "data validation compares source and target tables and does not apply to Kinesis or S3 targets"

static const SettingSpec target_metadata_specs[] = {
	{"TargetSchema", SETTING_STRING, .no_effect = NE_TS_SCHEMA},
	{"SupportLobs", SETTING_BOOL, .no_effect = NE_TS_LOB},
	{"FullLobMode", SETTING_BOOL, .no_effect = NE_TS_LOB},
	{"LobChunkSize", SETTING_INT, 0, 102400, .no_effect = NE_TS_LOB},
	{"LimitedSizeLobMode", SETTING_BOOL, .no_effect = NE_TS_LOB},
	{"LobMaxSize", SETTING_INT, 0, 1048576},
	{"InlineLobMaxSize", SETTING_INT, 0, 102400, .no_effect = NE_TS_LOB},
	{"LoadMaxFileSize", SETTING_INT, 0, 100000, .no_effect = NE_TS_FILE},
	{"ParallelLoadThreads", SETTING_INT, 0, 32},
	{"ParallelLoadBufferSize", SETTING_INT, 0, 1000},
	{"ParallelLoadQueuesPerThread", SETTING_INT, 0, 512, .no_effect = NE_TS_QUEUES},
	{"ParallelApplyThreads", SETTING_INT, 0, 32},
	{"ParallelApplyBufferSize", SETTING_INT, 0, 1000, .no_effect = NE_TS_QUEUES},
	{"ParallelApplyQueuesPerThread", SETTING_INT, 0, 512, .no_effect = NE_TS_QUEUES},
	{"BatchApplyEnabled", SETTING_BOOL},
	{"TaskRecoveryTableEnabled", SETTING_BOOL, .no_effect = NE_TS_RECOVERY},
	{NULL}
};

static const SettingSpec full_load_specs[] = {
	{"TargetTablePrepMode", SETTING_ENUM, 0, 0, prep_modes, .no_effect = NE_TS_PREP},
	{"CreatePkAfterFullLoad", SETTING_BOOL, .no_effect = NE_TS_PREP},
	{"StopTaskCachedChangesApplied", SETTING_BOOL, .no_effect = NE_TS_CACHED},
	{"StopTaskCachedChangesNotApplied", SETTING_BOOL, .no_effect = NE_TS_CACHED},
	{"MaxFullLoadSubTasks", SETTING_INT, 1, 49},
	{"TransactionConsistencyTimeout", SETTING_INT, 0, 86400, .no_effect = NE_TS_CONSISTENCY},
	{"CommitRate", SETTING_INT, 1, 50000, .no_effect = NE_TS_COMMIT},
	{NULL}
};

static const SettingSpec logging_specs[] = {
	{"EnableLogging", SETTING_BOOL, .no_effect = NE_TS_LOG},
	{"DeleteTaskLogs", SETTING_BOOL, .no_effect = NE_TS_LOG},
	{"EnableLogContext", SETTING_BOOL, .no_effect = NE_TS_LOG},
	{"LogComponents", SETTING_ANY, .no_effect = NE_TS_LOG},		/* checked below */
	{"CloudWatchLogGroup", SETTING_ANY, .no_effect = NE_TS_LOG},
	{"CloudWatchLogStream", SETTING_ANY, .no_effect = NE_TS_LOG},
	{NULL}
};

static const SettingSpec log_component_specs[] = {
	{"Id", SETTING_ENUM, 0, 0, log_components},
	{"Severity", SETTING_ENUM, 0, 0, log_severities},
	{NULL}
};

static const SettingSpec control_tables_specs[] = {
	{"ControlSchema", SETTING_STRING, .no_effect = NE_TS_CONTROL},
	{"HistoryTimeslotInMinutes", SETTING_INT, 1, 1440, .no_effect = NE_TS_CONTROL},
	/* DMS's own default task settings carry this spelling too. */
	{"historyTimeslotInMinutes", SETTING_INT, 1, 1440, .no_effect = NE_TS_CONTROL},
	{"HistoryTableEnabled", SETTING_BOOL, .no_effect = NE_TS_CONTROL},
	{"SuspendedTablesTableEnabled", SETTING_BOOL, .no_effect = NE_TS_CONTROL},
	{"StatusTableEnabled", SETTING_BOOL, .no_effect = NE_TS_CONTROL},
	{"FullLoadExceptionTableEnabled", SETTING_BOOL, .no_effect = NE_TS_CONTROL},
	{NULL}
};

static const SettingSpec stream_buffer_specs[] = {
	{"StreamBufferCount", SETTING_INT, 2, 32, .no_effect = NE_TS_BUFFER},
	{"StreamBufferSizeInMB", SETTING_INT, 1, 1024, .no_effect = NE_TS_BUFFER},
	{"CtrlStreamBufferSizeInMB", SETTING_INT, 1, 8, .no_effect = NE_TS_BUFFER},
	{NULL}
};

static const SettingSpec change_tuning_specs[] = {
	{"BatchApplyPreserveTransaction", SETTING_BOOL, .no_effect = NE_TS_TUNING},
	{"BatchApplyTimeoutMin", SETTING_INT, 0, 86400, .no_effect = NE_TS_TUNING},
	{"BatchApplyTimeoutMax", SETTING_INT, 0, 86400, .no_effect = NE_TS_TUNING},
	{"BatchApplyMemoryLimit", SETTING_INT, 0, 1048576, .no_effect = NE_TS_TUNING},
	{"BatchSplitSize", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_TS_TUNING},
	{"MinTransactionSize", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_TS_TUNING},
	{"CommitTimeout", SETTING_INT, 0, 86400, .no_effect = NE_TS_TUNING},
	{"MemoryLimitTotal", SETTING_INT, 0, 1048576, .no_effect = NE_TS_TUNING},
	{"MemoryKeepTime", SETTING_INT, 0, 86400, .no_effect = NE_TS_TUNING},
	{"StatementCacheSize", SETTING_INT, 0, 200, .no_effect = NE_TS_TUNING},
	{"RecoveryTimeout", SETTING_ANY, .no_effect = NE_TS_TUNING},
	{NULL}
};

static const SettingSpec ddl_policy_specs[] = {
	{"HandleSourceTableDropped", SETTING_BOOL, .no_effect = NE_TS_DDL},
	{"HandleSourceTableTruncated", SETTING_BOOL, .no_effect = NE_TS_DDL},
	{"HandleSourceTableAltered", SETTING_BOOL, .no_effect = NE_TS_DDL},
	{"HandlePartitionDdl", SETTING_ANY, .no_effect = NE_TS_DDL},
	{NULL}
};

static const SettingSpec before_image_specs[] = {
	{"EnableBeforeImage", SETTING_BOOL},
	{"FieldName", SETTING_STRING},
	{"ColumnFilter", SETTING_ENUM, 0, 0, column_filters},
	{NULL}
};

static const SettingSpec error_behavior_specs[] = {
	{"DataErrorPolicy", SETTING_ENUM, 0, 0, record_policies},
	{"DataTruncationErrorPolicy", SETTING_ENUM, 0, 0, record_policies},
	{"DataMaskingErrorPolicy", SETTING_ENUM, 0, 0, record_policies, .no_effect = NE_TS_ERRORS},
	{"DataErrorEscalationPolicy", SETTING_ENUM, 0, 0, escalation_policies, .no_effect = NE_TS_ERRORS},
	{"DataErrorEscalationCount", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_TS_ERRORS},
	{"TableErrorPolicy", SETTING_ENUM, 0, 0, escalation_policies, .no_effect = NE_TS_ERRORS},
	{"TableErrorEscalationPolicy", SETTING_ENUM, 0, 0, escalation_policies, .no_effect = NE_TS_ERRORS},
	{"TableErrorEscalationCount", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_TS_ERRORS},
	{"RecoverableErrorCount", SETTING_INT, -1, PG_INT32_MAX, .no_effect = NE_TS_ERRORS},
	{"RecoverableErrorInterval", SETTING_INT, 0, 86400, .no_effect = NE_TS_ERRORS},
	{"RecoverableErrorThrottling", SETTING_BOOL, .no_effect = NE_TS_ERRORS},
	{"RecoverableErrorThrottlingMax", SETTING_INT, 0, 86400, .no_effect = NE_TS_ERRORS},
	{"RecoverableErrorStopRetryAfterThrottlingMax", SETTING_BOOL, .no_effect = NE_TS_ERRORS},
	{"ApplyErrorDeletePolicy", SETTING_ENUM, 0, 0, record_policies, .no_effect = NE_TS_ERRORS},
	{"ApplyErrorInsertPolicy", SETTING_ENUM, 0, 0, apply_insert_policies, .no_effect = NE_TS_ERRORS},
	{"ApplyErrorUpdatePolicy", SETTING_ENUM, 0, 0, apply_update_policies, .no_effect = NE_TS_ERRORS},
	{"ApplyErrorEscalationPolicy", SETTING_ENUM, 0, 0, apply_escalation_policies, .no_effect = NE_TS_ERRORS},
	{"ApplyErrorEscalationCount", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_TS_ERRORS},
	{"ApplyErrorFailOnTruncationDdl", SETTING_BOOL, .no_effect = NE_TS_ERRORS},
	{"FailOnNoTablesCaptured", SETTING_BOOL, .no_effect = NE_TS_ERRORS},
	{"FailOnTransactionConsistencyBreached", SETTING_BOOL, .no_effect = NE_TS_ERRORS},
	{"FullLoadIgnoreConflicts", SETTING_BOOL, .no_effect = NE_TS_ERRORS},
	{"EventErrorPolicy", SETTING_ENUM, 0, 0, event_policies, .no_effect = NE_TS_ERRORS},
	{NULL}
};

static const SettingSpec validation_specs[] = {
	{"EnableValidation", SETTING_BOOL},
	{"ValidationMode", SETTING_ENUM, 0, 0, validation_modes, .no_effect = NE_TS_VALIDATION},
	{"ThreadCount", SETTING_INT, 1, 128, .no_effect = NE_TS_VALIDATION},
	{"PartitionSize", SETTING_INT, 1, PG_INT32_MAX, .no_effect = NE_TS_VALIDATION},
	{"FailureMaxCount", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_TS_VALIDATION},
	{"RecordFailureDelayInMinutes", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_TS_VALIDATION},
	{"RecordSuspendDelayInMinutes", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_TS_VALIDATION},
	{"MaxKeyColumnSize", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_TS_VALIDATION},
	{"TableFailureMaxCount", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_TS_VALIDATION},
	{"ValidationOnly", SETTING_BOOL, .no_effect = NE_TS_VALIDATION},
	{"HandleCollationDiff", SETTING_BOOL, .no_effect = NE_TS_VALIDATION},
	{"RecordFailureDelayLimitInMinutes", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_TS_VALIDATION},
	{"SkipLobColumns", SETTING_BOOL, .no_effect = NE_TS_VALIDATION},
	{"ValidationPartialLobSize", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_TS_VALIDATION},
	{"ValidationQueryCdcDelaySeconds", SETTING_INT, 0, PG_INT32_MAX, .no_effect = NE_TS_VALIDATION},
	{NULL}
};

/*
 * DeltaLoadSettings: dms_stream's own section for delta loads to S3 Parquet
 * (README "Delta loads").  Each key overrides the S3 target endpoint's
 * setting of the same name, where there is one.
 */
static const char *const delta_compression_types[] = {"none", "uncompressed", "gzip", "snappy", "zstd", NULL};
static const char *const delta_encoding_types[] = {"plain", "plain-dictionary", "rle-dictionary", NULL};
static const char *const delta_date_sequences[] = {"YYYYMMDD", "YYYYMMDDHH", "YYYYMM", "MMYYYYDD", "DDMMYYYY", NULL};
static const char *const delta_date_delimiters[] = {"SLASH", "UNDERSCORE", "DASH", "NONE", NULL};

static const SettingSpec delta_load_specs[] = {
	{"CompressionType", SETTING_ENUM, 0, 0, delta_compression_types},
	{"CompressionLevel", SETTING_INT, 0, 22},
	{"EncodingType", SETTING_ENUM, 0, 0, delta_encoding_types},
	{"RowGroupLength", SETTING_INT, 1, 64 * 1024 * 1024},
	{"RowGroupSizeMB", SETTING_INT, 1, 1024},
	{"DataPageSize", SETTING_INT, 1024, 1024 * 1024 * 1024},
	{"DictPageSizeLimit", SETTING_INT, 1024, 1024 * 1024 * 1024},
	{"MaxFileSize", SETTING_INT, 1, 1048576 * 16},
	{"MaxFileRows", SETTING_INT, 0, PG_INT64_MAX},
	{"DatePartitionEnabled", SETTING_BOOL},
	{"DatePartitionSequence", SETTING_ENUM, 0, 0, delta_date_sequences},
	{"DatePartitionDelimiter", SETTING_ENUM, 0, 0, delta_date_delimiters},
	{"FetchRows", SETTING_INT, 1, 1000000},
	{"UploadPartSizeMB", SETTING_INT, 5, 5120},
	{NULL}
};

typedef struct SectionSpec
{
	const char *name;
	const SettingSpec *specs;	/* NULL: accepted as is */
} SectionSpec;

static const SectionSpec sections[] = {
	{"TargetMetadata", target_metadata_specs},
	{"FullLoadSettings", full_load_specs},
	{"Logging", logging_specs},
	{"ControlTablesSettings", control_tables_specs},
	{"StreamBufferSettings", stream_buffer_specs},
	{"ChangeProcessingTuning", change_tuning_specs},
	{"ChangeProcessingDdlHandlingPolicy", ddl_policy_specs},
	{"BeforeImageSettings", before_image_specs},
	{"ErrorBehavior", error_behavior_specs},
	{"ValidationSettings", validation_specs},
	{"DeltaLoadSettings", delta_load_specs},
	{"LoopbackPreventionSettings", NULL},
	{"CharacterSetSettings", NULL},
	{"TTSettings", NULL},
	{"PostProcessingRules", NULL},
	{"FailTaskWhenCleanTaskResourceFailed", NULL},
	{NULL, NULL}
};

/*
 * validate_log_components
 *		Logging.LogComponents: an array of {Id, Severity}.
 */
static void
validate_log_components(const DmsJsonDoc *doc, json_t *logging)
{
	json_t	   *list = json_object_get(logging, "LogComponents");
	size_t		i;

	if (list == NULL || json_is_null(list))
		return;
	if (!json_is_array(list))
		dms_json_fail(doc, "Logging.LogComponents", NULL,
					  "Expected an array of {\"Id\": ..., \"Severity\": ...} objects but found %s.",
					  dms_json_kind(list));
	for (i = 0; i < json_array_size(list); i++)
	{
		char	   *path = dms_json_path_index("Logging.LogComponents", i);
		json_t	   *item = json_array_get(list, i);

		settings_validate(doc, item, path, log_component_specs);
		dms_json_get_string(doc, item, path, "Id", true, false);
		dms_json_get_string(doc, item, path, "Severity", true, false);
	}
}

/*
 * task_settings_validate
 *		Validate a whole task settings document.
 */
void
task_settings_validate(Jsonb *settings)
{
	DmsJsonDoc	doc = {"task settings"};
	json_t	   *root = dms_json_from_jsonb(&doc, settings);
	const char *key;
	json_t	   *value;
	const char *names[lengthof(sections)];
	int			i;
	json_t	   *section;
	bool		enabled;

	for (i = 0; i < (int) lengthof(sections); i++)
		names[i] = sections[i].name;

	dms_json_check_keys(&doc, root, "", names);

	json_object_foreach(root, key, value)
	{
		for (i = 0; sections[i].name != NULL; i++)
			if (strcmp(sections[i].name, key) == 0)
				break;
		if (sections[i].specs == NULL || json_is_null(value))
			continue;
		settings_validate(&doc, value, key, sections[i].specs);
	}

	section = json_object_get(root, "Logging");
	if (section && json_is_object(section))
		validate_log_components(&doc, section);

	/* BeforeImageSettings: FieldName is required when enabled. */
	section = json_object_get(root, "BeforeImageSettings");
	if (section && json_is_object(section) &&
		dms_json_get_bool(&doc, section, "BeforeImageSettings", "EnableBeforeImage", false, false, &enabled) &&
		enabled)
		dms_json_get_string(&doc, section, "BeforeImageSettings", "FieldName", true, false);

	/* BatchApplyEnabled is documented as unsupported for Kinesis targets. */
	section = json_object_get(root, "TargetMetadata");
	if (section && json_is_object(section) &&
		dms_json_get_bool(&doc, section, "TargetMetadata", "BatchApplyEnabled", false, false, &enabled) &&
		enabled)
		dms_json_fail(&doc, "TargetMetadata.BatchApplyEnabled",
					  "Set BatchApplyEnabled to false: records are always sent one change at a time, in commit order.",
					  "Batch apply is not supported for Kinesis targets (DMS documents the same limit).");

	section = json_object_get(root, "ValidationSettings");
	if (section && json_is_object(section) &&
		dms_json_get_bool(&doc, section, "ValidationSettings", "EnableValidation", false, false, &enabled) &&
		enabled)
		dms_json_fail(&doc, "ValidationSettings.EnableValidation",
					  "Set EnableValidation to false.",
					  "Data validation compares source and target tables and does not apply to Kinesis or S3 targets.");
}

/*
 * task_settings_no_effect
 *		The keys of valid task settings accepted without effect (of
 *		SettingNoEffect *), as Section.Key; a section dms_stream does not
 *		read at all is named whole when it is not null.
 */
List *
task_settings_no_effect(Jsonb *settings)
{
	DmsJsonDoc	doc = {"task settings"};
	json_t	   *root = dms_json_from_jsonb(&doc, settings);
	List	   *list = NIL;
	int			i;

	if (!json_is_object(root))
		return NIL;
	for (i = 0; sections[i].name != NULL; i++)
	{
		json_t	   *section = json_object_get(root, sections[i].name);

		if (section == NULL || json_is_null(section) || json_is_false(section))
			continue;
		if (sections[i].specs != NULL)
		{
			if (json_is_object(section))
				settings_no_effect(section, sections[i].name, sections[i].specs, &list);
		}
		else
		{
			SettingNoEffect *item = palloc(sizeof(SettingNoEffect));

			item->key = sections[i].name;
			item->reason = "a setting for DMS features dms_stream does not have (loopback prevention, character set conversion, Time Travel, post-processing)";
			list = lappend(list, item);
		}
	}
	return list;
}
