/*-------------------------------------------------------------------------
 *
 * settings_spec.h
 *	  Table-driven validation of DMS settings objects (S3Settings,
 *	  KinesisSettings, task settings sections).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SETTINGS_SPEC_H
#define SETTINGS_SPEC_H

#include "dms_json.h"
#include "nodes/pg_list.h"

typedef enum SettingKind
{
	SETTING_BOOL,				/* true/false, "true"/"false" */
	SETTING_BOOL_YN,			/* also "y"/"n" (Rfc4180) */
	SETTING_INT,				/* whole number within [min, max] */
	SETTING_STRING,				/* any string */
	SETTING_NONEMPTY,			/* non-empty string */
	SETTING_ENUM,				/* one of values, case- and _/- insensitive */
	SETTING_ANY					/* accepted as is (documented DMS key we do not use) */
} SettingKind;

typedef struct SettingSpec
{
	const char *key;
	SettingKind kind;
	int64		min;
	int64		max;
	const char *const *values;	/* SETTING_ENUM */

	/*
	 * A key DMS documents that dms_stream accepts (its value is still
	 * checked) but that changes nothing here: why, for the NOTICE and the
	 * view dms_stream.endpoint_settings_without_effect.  With same_as set,
	 * only a value other than same_as is without effect (same_as is what
	 * dms_stream always does: "true", "false" or an enum value).
	 */
	const char *no_effect;
	const char *same_as;
} SettingSpec;

/* One key of a document that is accepted without effect, and why. */
typedef struct SettingNoEffect
{
	const char *key;
	const char *reason;
} SettingNoEffect;

/*
 * Validate every member of obj against specs (terminated by a NULL key);
 * unknown keys are errors listing the valid ones.
 */
extern void settings_validate(const DmsJsonDoc *doc, const json_t *obj,
							  const char *path, const SettingSpec *specs);

/*
 * Append to *list (of SettingNoEffect *) the members of obj that specs mark
 * as without effect; path prefixes the keys.  obj must be validated.
 */
extern void settings_no_effect(const json_t *obj, const char *path,
							   const SettingSpec *specs, List **list);

/*
 * Validate endpoint settings for an engine and endpoint type; one NOTICE
 * names the keys accepted without effect.
 */
extern void endpoint_settings_validate(const char *engine, const char *endpoint_type,
									   Jsonb *settings);

/* The keys of valid endpoint settings accepted without effect (SettingNoEffect *). */
extern List *endpoint_settings_no_effect(const char *engine, const char *endpoint_type,
										 Jsonb *settings);

/* Validate DMS task settings JSON. */
extern void task_settings_validate(Jsonb *settings);

/* The keys of valid task settings accepted without effect (SettingNoEffect *). */
extern List *task_settings_no_effect(Jsonb *settings);

/* Validate DMS table mappings JSON. */
extern void table_mappings_validate(Jsonb *mappings);

#endif							/* SETTINGS_SPEC_H */
