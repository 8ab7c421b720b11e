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
} SettingSpec;

/*
 * Validate every member of obj against specs (terminated by a NULL key);
 * unknown keys are errors listing the valid ones.
 */
extern void settings_validate(const DmsJsonDoc *doc, const json_t *obj,
							  const char *path, const SettingSpec *specs);

/* Validate endpoint settings for an engine and endpoint type. */
extern void endpoint_settings_validate(const char *engine, const char *endpoint_type,
									   Jsonb *settings);

/* Validate DMS task settings JSON. */
extern void task_settings_validate(Jsonb *settings);

/* Validate DMS table mappings JSON. */
extern void table_mappings_validate(Jsonb *mappings);

#endif							/* SETTINGS_SPEC_H */
