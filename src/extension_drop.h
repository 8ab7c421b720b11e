/*-------------------------------------------------------------------------
 *
 * extension_drop.h
 *	  DROP EXTENSION dms_stream: refused while tasks run; once the drop
 *	  commits, the tasks' own replication slots and spool files go with it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_EXTENSION_DROP_H
#define DMS_EXTENSION_DROP_H

/* Install the ProcessUtility hook (from _PG_init). */
extern void extension_drop_install_hook(void);

#endif							/* DMS_EXTENSION_DROP_H */
