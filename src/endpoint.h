/*-------------------------------------------------------------------------
 *
 * endpoint.h
 *	  An endpoint row of dms_stream.endpoint, loaded for use by the clients.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_ENDPOINT_H
#define DMS_ENDPOINT_H

#include "aws_sigv4.h"
#include "dms_json.h"

typedef struct DmsEndpoint
{
	char	   *name;
	char	   *engine;			/* s3, kinesis, postgres */
	char	   *endpoint_type;	/* source, target */
	json_t	   *settings;		/* DMS settings object */
	char	   *endpoint_url;	/* custom server, NULL for AWS */
	char	   *region;			/* resolved: column, StreamArn, env, us-east-1 */
	char	   *s3_addressing_style;	/* auto, path, virtual */
	bool		has_keys;		/* explicit keys in endpoint_credential */
	AwsCredentials keys;
} DmsEndpoint;

/*
 * Load an endpoint by name (SPI; needs a transaction and SELECT on the
 * catalog, credentials included).  Errors if it does not exist.  The result
 * is allocated in CurrentMemoryContext.
 */
extern DmsEndpoint *dms_endpoint_load(const char *name);

/* A string setting of the endpoint, or NULL. */
extern const char *dms_endpoint_setting(const DmsEndpoint *ep, const char *key);

#endif							/* DMS_ENDPOINT_H */
