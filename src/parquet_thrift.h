/*-------------------------------------------------------------------------
 *
 * parquet_thrift.h
 *	  A growable byte buffer and a Thrift compact protocol encoder, enough
 *	  for Parquet's page headers and footer (src/parquet.c).
 *
 * Only writing is needed.  Structs nest up to PQ_THRIFT_MAX_DEPTH deep;
 * field ids are delta-encoded against the previous field of the same
 * struct, as the compact protocol requires, so fields must be written in
 * increasing id order (Parquet's readers do not require it, but the short
 * form does).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DMS_PARQUET_THRIFT_H
#define DMS_PARQUET_THRIFT_H

#include "postgres.h"

/* Growable buffer allocated in a given memory context (may exceed 1 GB). */
typedef struct PqBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
	MemoryContext cxt;
} PqBuf;

extern void pq_buf_init(PqBuf *buf, MemoryContext cxt, size_t initial);
extern void pq_buf_grow(PqBuf *buf, size_t need);

static inline void
pq_buf_reserve(PqBuf *buf, size_t extra)
{
	if (unlikely(buf->len + extra > buf->cap))
		pq_buf_grow(buf, buf->len + extra);
}

static inline void
pq_buf_append(PqBuf *buf, const void *data, size_t len)
{
	pq_buf_reserve(buf, len);
	memcpy(buf->data + buf->len, data, len);
	buf->len += len;
}

static inline void
pq_buf_byte(PqBuf *buf, uint8 b)
{
	pq_buf_reserve(buf, 1);
	buf->data[buf->len++] = (char) b;
}

/* Unsigned LEB128 varint. */
static inline void
pq_buf_uvarint(PqBuf *buf, uint64 v)
{
	pq_buf_reserve(buf, 10);
	while (v >= 0x80)
	{
		buf->data[buf->len++] = (char) ((v & 0x7F) | 0x80);
		v >>= 7;
	}
	buf->data[buf->len++] = (char) v;
}

/* Thrift compact protocol type ids. */
#define PQ_T_BOOL_TRUE	1
#define PQ_T_BOOL_FALSE 2
#define PQ_T_BYTE		3
#define PQ_T_I16		4
#define PQ_T_I32		5
#define PQ_T_I64		6
#define PQ_T_DOUBLE		7
#define PQ_T_BINARY		8
#define PQ_T_LIST		9
#define PQ_T_SET		10
#define PQ_T_MAP		11
#define PQ_T_STRUCT		12

#define PQ_THRIFT_MAX_DEPTH 16

typedef struct PqThrift
{
	PqBuf	   *out;
	int			depth;
	int16		last[PQ_THRIFT_MAX_DEPTH];
} PqThrift;

extern void pq_thrift_init(PqThrift *t, PqBuf *out);

/* Fields of the current struct. */
extern void pq_thrift_i32(PqThrift *t, int16 id, int32 v);
extern void pq_thrift_i64(PqThrift *t, int16 id, int64 v);
extern void pq_thrift_i8(PqThrift *t, int16 id, int8 v);
extern void pq_thrift_bool(PqThrift *t, int16 id, bool v);
extern void pq_thrift_binary(PqThrift *t, int16 id, const void *data, size_t len);
extern void pq_thrift_string(PqThrift *t, int16 id, const char *s);

/* A struct field: begin, its fields, end (writes the stop byte). */
extern void pq_thrift_struct_begin(PqThrift *t, int16 id);
extern void pq_thrift_struct_end(PqThrift *t);

/* A list field with n elements of elem_type. */
extern void pq_thrift_list_begin(PqThrift *t, int16 id, int elem_type, int n);

/* List elements. */
extern void pq_thrift_elem_i32(PqThrift *t, int32 v);
extern void pq_thrift_elem_string(PqThrift *t, const char *s);
extern void pq_thrift_elem_struct_begin(PqThrift *t);

/* The outermost struct's stop byte. */
extern void pq_thrift_end(PqThrift *t);

#endif							/* DMS_PARQUET_THRIFT_H */
