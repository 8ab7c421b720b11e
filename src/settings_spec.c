/*-------------------------------------------------------------------------
 *
 * settings_spec.c
 *	  Table-driven validation of DMS settings objects.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "settings_spec.h"

/*
 * spec_key_list
 *		NULL-terminated list of the keys in specs, for hints.
 */
static const char **
spec_key_list(const SettingSpec *specs)
{
	int			n = 0;
	const char **keys;

	while (specs[n].key != NULL)
		n++;
	keys = palloc(sizeof(char *) * (n + 1));
	for (n = 0; specs[n].key != NULL; n++)
		keys[n] = specs[n].key;
	keys[n] = NULL;
	return keys;
}

/*
 * settings_validate
 *		Check each member of obj against its spec.
 */
void
settings_validate(const DmsJsonDoc *doc, const json_t *obj, const char *path,
				  const SettingSpec *specs)
{
	const SettingSpec *spec;

	dms_json_check_keys(doc, obj, path, spec_key_list(specs));

	for (spec = specs; spec->key != NULL; spec++)
	{
		int64		n;
		bool		b;

		switch (spec->kind)
		{
			case SETTING_BOOL:
				dms_json_get_bool(doc, obj, path, spec->key, false, false, &b);
				break;
			case SETTING_BOOL_YN:
				dms_json_get_bool(doc, obj, path, spec->key, false, true, &b);
				break;
			case SETTING_INT:
				dms_json_get_int(doc, obj, path, spec->key, false, spec->min, spec->max, &n);
				break;
			case SETTING_STRING:
				dms_json_get_string(doc, obj, path, spec->key, false, true);
				break;
			case SETTING_NONEMPTY:
				dms_json_get_string(doc, obj, path, spec->key, false, false);
				break;
			case SETTING_ENUM:
				dms_json_get_enum(doc, obj, path, spec->key, false, spec->values, true);
				break;
			case SETTING_ANY:
				break;
		}
	}
}

/*
 * value_is
 *		Whether a member's value is the JSON boolean or string same_as
 *		(strings compared ignoring case, '_' and '-').
 */
static bool
value_is(const json_t *value, const char *same_as)
{
	if (json_is_boolean(value))
		return strcmp(json_is_true(value) ? "true" : "false", same_as) == 0;
	return json_is_string(value) && dms_json_enum_equal(json_string_value(value), same_as);
}

/*
 * settings_no_effect
 *		See settings_spec.h.
 */
void
settings_no_effect(const json_t *obj, const char *path, const SettingSpec *specs,
				   List **list)
{
	const SettingSpec *spec;

	for (spec = specs; spec->key != NULL; spec++)
	{
		json_t	   *value = json_object_get(obj, spec->key);
		SettingNoEffect *item;

		if (spec->no_effect == NULL || value == NULL || json_is_null(value))
			continue;
		if (spec->same_as != NULL && value_is(value, spec->same_as))
			continue;
		item = palloc(sizeof(SettingNoEffect));
		item->key = (path == NULL || *path == '\0') ? spec->key : psprintf("%s.%s", path, spec->key);
		item->reason = spec->no_effect;
		*list = lappend(*list, item);
	}
}
