/*-------------------------------------------------------------------------
 *
 * error_public.h
 *	  Error texts that may be stored where every role can read them.
 *
 * dms_stream.task.last_error, task_status, run_history, the delta-load
 * controller's last_error and NOTIFY payloads are readable by every role.
 * An error about data (SQLSTATE class 22 other than parameter errors, class
 * 23, or any error whose text quotes a row: "Failing row contains",
 * "Key (...)=(...)", invalid input syntax) may carry the rejected values, so
 * only a value-free text of it goes there: its message with every quoted
 * string and byte sequence masked, no detail, the SQLSTATE and its class.
 * The full error goes to dms_stream.apply_exceptions (admin only) and the
 * server log.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_ERROR_PUBLIC_H
#define DMS_ERROR_PUBLIC_H

#include "postgres.h"

/* Whether the error's text may quote row values. */
extern bool error_quotes_values(const ErrorData *edata);

/* The message, with the detail in parentheses: for the log and
 * apply_exceptions.  palloc'd. */
extern char *error_full_text(const ErrorData *edata);

/* The text that may be stored where every role reads it: the full text of
 * an error that quotes no values, else the masked message, the SQLSTATE and
 * its class, and where the full error is.  palloc'd. */
extern char *error_public_text(const ErrorData *edata);

/* s with every "quoted string" and 0x byte sequence masked.  palloc'd. */
extern char *error_mask_values(const char *s);

#endif							/* DMS_ERROR_PUBLIC_H */
