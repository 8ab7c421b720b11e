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
