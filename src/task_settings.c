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

static const SettingSpec target_metadata_specs[] = {
	{"TargetSchema", SETTING_STRING},
	{"SupportLobs", SETTING_BOOL},
	{"FullLobMode", SETTING_BOOL},
	{"LobChunkSize", SETTING_INT, 0, 102400},
	{"LimitedSizeLobMode", SETTING_BOOL},
	{"LobMaxSize", SETTING_INT, 0, 1048576},
	{"InlineLobMaxSize", SETTING_INT, 0, 102400},
	{"LoadMaxFileSize", SETTING_INT, 0, 100000},
	{"ParallelLoadThreads", SETTING_INT, 0, 32},
	{"ParallelLoadBufferSize", SETTING_INT, 0, 1000},
	{"ParallelLoadQueuesPerThread", SETTING_INT, 0, 512},
	{"ParallelApplyThreads", SETTING_INT, 0, 32},
	{"ParallelApplyBufferSize", SETTING_INT, 0, 1000},
	{"ParallelApplyQueuesPerThread", SETTING_INT, 0, 512},
	{"BatchApplyEnabled", SETTING_BOOL},
	{"TaskRecoveryTableEnabled", SETTING_BOOL},
	{NULL}
};

static const SettingSpec full_load_specs[] = {
	{"TargetTablePrepMode", SETTING_ENUM, 0, 0, prep_modes},
	{"CreatePkAfterFullLoad", SETTING_BOOL},
	{"StopTaskCachedChangesApplied", SETTING_BOOL},
	{"StopTaskCachedChangesNotApplied", SETTING_BOOL},
	{"MaxFullLoadSubTasks", SETTING_INT, 1, 49},
	{"TransactionConsistencyTimeout", SETTING_INT, 0, 86400},
	{"CommitRate", SETTING_INT, 1, 50000},
	{NULL}
};

static const SettingSpec logging_specs[] = {
	{"EnableLogging", SETTING_BOOL},
	{"DeleteTaskLogs", SETTING_BOOL},
	{"EnableLogContext", SETTING_BOOL},
	{"LogComponents", SETTING_ANY},		/* checked below */
	{"CloudWatchLogGroup", SETTING_ANY},
	{"CloudWatchLogStream", SETTING_ANY},
	{NULL}
};

static const SettingSpec log_component_specs[] = {
	{"Id", SETTING_ENUM, 0, 0, log_components},
	{"Severity", SETTING_ENUM, 0, 0, log_severities},
	{NULL}
};

static const SettingSpec control_tables_specs[] = {
	{"ControlSchema", SETTING_STRING},
	{"HistoryTimeslotInMinutes", SETTING_INT, 1, 1440},
	/* DMS's own default task settings carry this spelling too. */
	{"historyTimeslotInMinutes", SETTING_INT, 1, 1440},
	{"HistoryTableEnabled", SETTING_BOOL},
	{"SuspendedTablesTableEnabled", SETTING_BOOL},
	{"StatusTableEnabled", SETTING_BOOL},
	{"FullLoadExceptionTableEnabled", SETTING_BOOL},
	{NULL}
};

static const SettingSpec stream_buffer_specs[] = {
	{"StreamBufferCount", SETTING_INT, 2, 32},
	{"StreamBufferSizeInMB", SETTING_INT, 1, 1024},
	{"CtrlStreamBufferSizeInMB", SETTING_INT, 1, 8},
	{NULL}
};

static const SettingSpec change_tuning_specs[] = {
	{"BatchApplyPreserveTransaction", SETTING_BOOL},
	{"BatchApplyTimeoutMin", SETTING_INT, 0, 86400},
	{"BatchApplyTimeoutMax", SETTING_INT, 0, 86400},
	{"BatchApplyMemoryLimit", SETTING_INT, 0, 1048576},
	{"BatchSplitSize", SETTING_INT, 0, PG_INT32_MAX},
	{"MinTransactionSize", SETTING_INT, 0, PG_INT32_MAX},
	{"CommitTimeout", SETTING_INT, 0, 86400},
	{"MemoryLimitTotal", SETTING_INT, 0, 1048576},
	{"MemoryKeepTime", SETTING_INT, 0, 86400},
	{"StatementCacheSize", SETTING_INT, 0, 200},
	{"RecoveryTimeout", SETTING_ANY},
	{NULL}
};

static const SettingSpec ddl_policy_specs[] = {
	{"HandleSourceTableDropped", SETTING_BOOL},
	{"HandleSourceTableTruncated", SETTING_BOOL},
	{"HandleSourceTableAltered", SETTING_BOOL},
	{"HandlePartitionDdl", SETTING_ANY},
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
	{"DataMaskingErrorPolicy", SETTING_ENUM, 0, 0, record_policies},
	{"DataErrorEscalationPolicy", SETTING_ENUM, 0, 0, escalation_policies},
	{"DataErrorEscalationCount", SETTING_INT, 0, PG_INT32_MAX},
	{"TableErrorPolicy", SETTING_ENUM, 0, 0, escalation_policies},
	{"TableErrorEscalationPolicy", SETTING_ENUM, 0, 0, escalation_policies},
	{"TableErrorEscalationCount", SETTING_INT, 0, PG_INT32_MAX},
	{"RecoverableErrorCount", SETTING_INT, -1, PG_INT32_MAX},
	{"RecoverableErrorInterval", SETTING_INT, 0, 86400},
	{"RecoverableErrorThrottling", SETTING_BOOL},
	{"RecoverableErrorThrottlingMax", SETTING_INT, 0, 86400},
	{"RecoverableErrorStopRetryAfterThrottlingMax", SETTING_BOOL},
	{"ApplyErrorDeletePolicy", SETTING_ENUM, 0, 0, record_policies},
	{"ApplyErrorInsertPolicy", SETTING_ENUM, 0, 0, apply_insert_policies},
	{"ApplyErrorUpdatePolicy", SETTING_ENUM, 0, 0, apply_update_policies},
	{"ApplyErrorEscalationPolicy", SETTING_ENUM, 0, 0, apply_escalation_policies},
	{"ApplyErrorEscalationCount", SETTING_INT, 0, PG_INT32_MAX},
	{"ApplyErrorFailOnTruncationDdl", SETTING_BOOL},
	{"FailOnNoTablesCaptured", SETTING_BOOL},
	{"FailOnTransactionConsistencyBreached", SETTING_BOOL},
	{"FullLoadIgnoreConflicts", SETTING_BOOL},
	{"EventErrorPolicy", SETTING_ENUM, 0, 0, event_policies},
	{NULL}
};

static const SettingSpec validation_specs[] = {
	{"EnableValidation", SETTING_BOOL},
	{"ValidationMode", SETTING_ENUM, 0, 0, validation_modes},
	{"ThreadCount", SETTING_INT, 1, 128},
	{"PartitionSize", SETTING_INT, 1, PG_INT32_MAX},
	{"FailureMaxCount", SETTING_INT, 0, PG_INT32_MAX},
	{"RecordFailureDelayInMinutes", SETTING_INT, 0, PG_INT32_MAX},
	{"RecordSuspendDelayInMinutes", SETTING_INT, 0, PG_INT32_MAX},
	{"MaxKeyColumnSize", SETTING_INT, 0, PG_INT32_MAX},
	{"TableFailureMaxCount", SETTING_INT, 0, PG_INT32_MAX},
	{"ValidationOnly", SETTING_BOOL},
	{"HandleCollationDiff", SETTING_BOOL},
	{"RecordFailureDelayLimitInMinutes", SETTING_INT, 0, PG_INT32_MAX},
	{"SkipLobColumns", SETTING_BOOL},
	{"ValidationPartialLobSize", SETTING_INT, 0, PG_INT32_MAX},
	{"ValidationQueryCdcDelaySeconds", SETTING_INT, 0, PG_INT32_MAX},
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
