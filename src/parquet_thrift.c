/*-------------------------------------------------------------------------
 *
 * parquet_thrift.c
 *	  Growable buffers and the Thrift compact protocol encoder used by the
 *	  Parquet writer for page headers and the file footer.
 *
 * Compact protocol summary (Thrift's TCompactProtocol): a field header is
 * one byte (delta << 4 | type) when the id grows by 1..15 from the previous
 * field of the same struct, else the type byte followed by the id as a
 * zigzag varint; integers are zigzag varints; binary is a varint length and
 * the bytes; a bool field carries its value in the type nibble; a list
 * header is (size << 4 | element type), or 0xF0 | type and a varint size
 * when there are 15 elements or more; a struct ends with a 0 byte.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "parquet_thrift.h"

/*
 * pq_buf_init
 *		Start an empty buffer in cxt with room for initial bytes (at least
 *		64).
 */
void
pq_buf_init(PqBuf *buf, MemoryContext cxt, size_t initial)
{
	buf->cxt = cxt;
	buf->cap = Max(initial, 64);
	buf->len = 0;
	buf->data = MemoryContextAllocHuge(cxt, buf->cap);
}

/*
 * pq_buf_grow
 *		Double the buffer's capacity until it holds need bytes (huge
 *		allocations allowed).
 */
void
pq_buf_grow(PqBuf *buf, size_t need)
{
	size_t		cap = buf->cap;

	while (cap < need)
		cap *= 2;
	buf->data = repalloc_huge(buf->data, cap);
	buf->cap = cap;
}

/*
 * pq_thrift_init
 *		Start encoding a top-level struct into out.
 */
void
pq_thrift_init(PqThrift *t, PqBuf *out)
{
	t->out = out;
	t->depth = 0;
	t->last[0] = 0;
}

/*
 * zigzag64
 *		Zigzag encoding of v: small magnitudes of either sign become small
 *		unsigned numbers.
 */
static inline uint64
zigzag64(int64 v)
{
	return ((uint64) v << 1) ^ (uint64) (v >> 63);
}

/*
 * field_header
 *		Write the header of field id of the given compact type: one byte
 *		when the id grows by 1..15 from the struct's previous field, else
 *		the type byte and the id as a zigzag varint.
 */
static void
field_header(PqThrift *t, int16 id, int type)
{
	int			delta = id - t->last[t->depth];

	if (delta > 0 && delta <= 15)
		pq_buf_byte(t->out, (uint8) ((delta << 4) | type));
	else
	{
		pq_buf_byte(t->out, (uint8) type);
		pq_buf_uvarint(t->out, zigzag64(id));
	}
	t->last[t->depth] = id;
}

/*
 * pq_thrift_i32
 *		Write an i32 field (zigzag varint).
 */
void
pq_thrift_i32(PqThrift *t, int16 id, int32 v)
{
	field_header(t, id, PQ_T_I32);
	pq_buf_uvarint(t->out, zigzag64(v));
}

/*
 * pq_thrift_i64
 *		Write an i64 field (zigzag varint).
 */
void
pq_thrift_i64(PqThrift *t, int16 id, int64 v)
{
	field_header(t, id, PQ_T_I64);
	pq_buf_uvarint(t->out, zigzag64(v));
}

/*
 * pq_thrift_i8
 *		Write a byte field.
 */
void
pq_thrift_i8(PqThrift *t, int16 id, int8 v)
{
	field_header(t, id, PQ_T_BYTE);
	pq_buf_byte(t->out, (uint8) v);
}

/*
 * pq_thrift_bool
 *		Write a bool field: the value is in the header's type nibble.
 */
void
pq_thrift_bool(PqThrift *t, int16 id, bool v)
{
	field_header(t, id, v ? PQ_T_BOOL_TRUE : PQ_T_BOOL_FALSE);
}

/*
 * pq_thrift_binary
 *		Write a binary field: varint length, then the bytes.
 */
void
pq_thrift_binary(PqThrift *t, int16 id, const void *data, size_t len)
{
	field_header(t, id, PQ_T_BINARY);
	pq_buf_uvarint(t->out, len);
	pq_buf_append(t->out, data, len);
}

/*
 * pq_thrift_string
 *		Write a string field (binary, without the terminating NUL).
 */
void
pq_thrift_string(PqThrift *t, int16 id, const char *s)
{
	pq_thrift_binary(t, id, s, strlen(s));
}

/*
 * push
 *		Enter a nested struct: its field ids start again from 0; an ERROR
 *		past PQ_THRIFT_MAX_DEPTH.
 */
static void
push(PqThrift *t)
{
	if (t->depth + 1 >= PQ_THRIFT_MAX_DEPTH)
		elog(ERROR, "Thrift structs nested too deep");
	t->depth++;
	t->last[t->depth] = 0;
}

/*
 * pq_thrift_struct_begin
 *		Start a struct field id; fields written until pq_thrift_struct_end
 *		are its members.
 */
void
pq_thrift_struct_begin(PqThrift *t, int16 id)
{
	field_header(t, id, PQ_T_STRUCT);
	push(t);
}

/*
 * pq_thrift_struct_end
 *		End the current struct (a 0 byte) and return to the enclosing one.
 */
void
pq_thrift_struct_end(PqThrift *t)
{
	pq_buf_byte(t->out, 0);
	Assert(t->depth > 0);
	t->depth--;
}

/*
 * pq_thrift_list_begin
 *		Start a list field id of n elements of elem_type; the elements
 *		follow with the pq_thrift_elem_* calls.
 */
void
pq_thrift_list_begin(PqThrift *t, int16 id, int elem_type, int n)
{
	field_header(t, id, PQ_T_LIST);
	if (n < 15)
		pq_buf_byte(t->out, (uint8) ((n << 4) | elem_type));
	else
	{
		pq_buf_byte(t->out, (uint8) (0xF0 | elem_type));
		pq_buf_uvarint(t->out, (uint64) n);
	}
}

/*
 * pq_thrift_elem_i32
 *		Write an i32 list element.
 */
void
pq_thrift_elem_i32(PqThrift *t, int32 v)
{
	pq_buf_uvarint(t->out, zigzag64(v));
}

/*
 * pq_thrift_elem_string
 *		Write a string list element.
 */
void
pq_thrift_elem_string(PqThrift *t, const char *s)
{
	size_t		len = strlen(s);

	pq_buf_uvarint(t->out, len);
	pq_buf_append(t->out, s, len);
}

/*
 * pq_thrift_elem_struct_begin
 *		Start a struct list element, ended with pq_thrift_struct_end.
 */
void
pq_thrift_elem_struct_begin(PqThrift *t)
{
	push(t);
}

/*
 * pq_thrift_end
 *		End the top-level struct (a 0 byte); every nested struct must be
 *		closed.
 */
void
pq_thrift_end(PqThrift *t)
{
	Assert(t->depth == 0);
	pq_buf_byte(t->out, 0);
}
