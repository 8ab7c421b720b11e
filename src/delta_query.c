/*-------------------------------------------------------------------------
 *
 * delta_query.c
 *	  The query of a delta load (delta_load.h): which rows of the source
 *	  table a run extracts, in which order, with which parameters.
 *
 * Safety: the query text contains only identifiers quoted with
 * quote_identifier, operators named with their schema (the filter type's
 * default btree operators, OPERATOR(schema.op)), pg_catalog functions and
 * parameter numbers.  Every value from the controller row is a parameter
 * typed as the filter column (start_value, end_value, watermark) or as
 * int8/xid[] (the late-row snapshot).
 *
 * Which rows (W = watermark, F = filter column, OP = the operator filter):
 *	- first run (W NULL):        OP
 *	- later runs:                OP AND F > W
 *	  plus, when the previous extract saw other transactions open,
 *	  late rows:                 OP AND F <= W AND xmin not visible to
 *	                             the previous extract's snapshot
 *	- operator null (no order):  F IS NULL, and after the first run only
 *	                             rows whose xmin the previous snapshot did
 *	                             not see (inserted or updated since)
 * ordered by F, then the primary key columns.
 *
 * "xmin not visible to the previous snapshot S" is written with age(),
 * which is relative to the same stable "latest xid" in the whole
 * transaction: with D_xmin = latest - S.xmin and D_xmax = latest - S.xmax
 * (computed here after the extract's snapshot is taken),
 *	age(xmin) <= D_xmin AND (age(xmin) <= D_xmax OR xmin = ANY(S.xip))
 * i.e. xmin >= S.xmin and (xmin >= S.xmax or xmin was in progress).
 * delta_late_snapshot, at the end of this file's helpers, decides after each
 * extract whether S is kept for the next run.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/relation.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "lib/stringinfo.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"

#include "delta_load.h"

/*
 * op_sql
 *		OPERATOR(schema.name) for an operator.
 */
static char *
op_sql(Oid opno)
{
	HeapTuple	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
	Form_pg_operator op;
	char	   *result;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator %u", opno);
	op = (Form_pg_operator) GETSTRUCT(tup);
	result = psprintf("OPERATOR(%s.%s)",
					  quote_identifier(get_namespace_name(op->oprnamespace)),
					  NameStr(op->oprname));
	ReleaseSysCache(tup);
	return result;
}

/*
 * add_param
 *		Append a parameter; returns its "$n".  text NULL is an SQL NULL.
 */
static char *
add_param(DeltaQuery *q, Oid type, const char *text, Datum value)
{
	int			n = q->nparams++;

	Assert(n < DELTA_MAX_PARAMS);
	q->param_types[n] = type;
	q->param_text[n] = text ? pstrdup(text) : NULL;
	q->param_values[n] = value;
	q->param_nulls[n] = text ? ' ' : 'n';
	return psprintf("$%d", n + 1);
}

/*
 * typed_param
 *		A parameter of the filter column's type from its text.
 */
static char *
typed_param(DeltaQuery *q, Oid type, int32 typmod, const char *text)
{
	Oid			typinput;
	Oid			typioparam;
	Datum		value;

	getTypeInputInfo(type, &typinput, &typioparam);
	value = OidInputFunctionCall(typinput, (char *) text, typioparam, typmod);
	return add_param(q, type, text, value);
}

/*
 * widen_xid
 *		The full transaction id of xid, which is not after next.
 */
static uint64
widen_xid(TransactionId xid, FullTransactionId next)
{
	uint32		epoch = EpochFromFullTransactionId(next);

	if (xid > XidFromFullTransactionId(next) && epoch > 0)
		epoch--;
	return U64FromFullTransactionId(FullTransactionIdFromEpochAndXid(epoch, xid));
}

/*
 * late_condition
 *		The SQL condition "t.xmin was not visible to snapshot text snap", or
 *		NULL (with q->late_note saying why) when it cannot be evaluated.
 */
static char *
late_condition(DeltaQuery *q, const char *snap)
{
	uint64		s_xmin;
	uint64		s_xmax;
	const char *p = snap;
	char	   *end;
	StringInfoData xip;
	uint64		latest;
	int64		d_xmin;
	int64		d_xmax;
	char	   *p_dxmin;
	char	   *p_dxmax;
	char	   *p_xip;

	errno = 0;
	s_xmin = strtou64(p, &end, 10);
	if (*end != ':' || errno)
		elog(ERROR, "invalid late_row_snapshot \"%s\"", snap);
	p = end + 1;
	s_xmax = strtou64(p, &end, 10);
	if (*end != ':' || errno)
		elog(ERROR, "invalid late_row_snapshot \"%s\"", snap);
	p = end + 1;
	initStringInfo(&xip);
	appendStringInfoChar(&xip, '{');
	while (*p)
	{
		uint64		x = strtou64(p, &end, 10);

		if (end == p || errno)
			elog(ERROR, "invalid late_row_snapshot \"%s\"", snap);
		if (xip.len > 1)
			appendStringInfoChar(&xip, ',');
		appendStringInfo(&xip, "%u", (TransactionId) (x & 0xFFFFFFFF));
		p = end;
		if (*p == ',')
			p++;
	}
	appendStringInfoChar(&xip, '}');

	/* age() is relative to this value for the whole transaction. */
	latest = widen_xid(GetStableLatestTransactionId(), ReadNextFullTransactionId());
	d_xmin = (int64) latest - (int64) s_xmin;
	d_xmax = (int64) latest - (int64) s_xmax;
	if (d_xmin >= PG_INT32_MAX)
	{
		q->late_note = psprintf("more than 2^31 transactions ran since the previous extract (snapshot %s): "
								"rows committed late by transactions open during it cannot be told apart any more",
								snap);
		return NULL;
	}

	p_dxmin = add_param(q, INT8OID, psprintf(INT64_FORMAT, d_xmin), Int64GetDatum(d_xmin));
	p_dxmax = add_param(q, INT8OID, psprintf(INT64_FORMAT, d_xmax), Int64GetDatum(d_xmax));
	p_xip = add_param(q, TEXTOID, xip.data, CStringGetTextDatum(xip.data));
	q->late_branch = true;
	return psprintf("pg_catalog.age(t.xmin) OPERATOR(pg_catalog.<=) %s"
					" AND (pg_catalog.age(t.xmin) OPERATOR(pg_catalog.<=) %s"
					" OR t.xmin OPERATOR(pg_catalog.=) ANY (%s::pg_catalog.xid[]))",
					p_dxmin, p_dxmax, p_xip);
}

/*
 * delta_late_snapshot
 *		The pg_snapshot text to keep for the next run's late-row check, or
 *		NULL when no other transaction could still commit rows this
 *		extract did not see (nothing in progress at the snapshot, no other
 *		transaction open right after it, and no xid assigned in between).
 */
char *
delta_late_snapshot(Snapshot snap, bool always)
{
	FullTransactionId next = ReadNextFullTransactionId();
	int			nvxids;
	StringInfoData s;
	uint64		xmin;
	uint64		xmax;
	int			i;

	(void) GetCurrentVirtualXIDs(InvalidTransactionId, false, false, PROC_IN_VACUUM, &nvxids);
	xmax = widen_xid(snap->xmax, next);
	if (!always && snap->xcnt == 0 && snap->subxcnt == 0 && !snap->suboverflowed &&
		nvxids == 0 && U64FromFullTransactionId(next) == xmax)
		return NULL;

	xmin = widen_xid(snap->xmin, next);
	initStringInfo(&s);
	if (snap->suboverflowed)
	{
		/*
		 * The subtransactions in progress are not all listed: count every
		 * xid from xmin on as possibly unseen (rows may be extracted twice,
		 * never lost).
		 */
		appendStringInfo(&s, UINT64_FORMAT ":" UINT64_FORMAT ":", xmin, xmin);
		return s.data;
	}
	appendStringInfo(&s, UINT64_FORMAT ":" UINT64_FORMAT ":", xmin, xmax);
	{
		/* pg_snapshot wants the in-progress ids sorted and distinct */
		int			n = snap->xcnt + snap->subxcnt;
		uint64	   *ids = palloc(sizeof(uint64) * Max(n, 1));
		int			k = 0;

		for (i = 0; i < (int) snap->xcnt; i++)
			ids[k++] = widen_xid(snap->xip[i], next);
		for (i = 0; i < snap->subxcnt; i++)
			ids[k++] = widen_xid(snap->subxip[i], next);
		for (i = 1; i < k; i++)
		{
			uint64		v = ids[i];
			int			j = i - 1;

			while (j >= 0 && ids[j] > v)
			{
				ids[j + 1] = ids[j];
				j--;
			}
			ids[j + 1] = v;
		}
		for (i = 0; i < k; i++)
		{
			if (i > 0 && ids[i] == ids[i - 1])
				continue;
			appendStringInfo(&s, "%s" UINT64_FORMAT, (s.data[s.len - 1] == ':') ? "" : ",", ids[i]);
		}
	}
	return s.data;
}

/*
 * delta_query_build
 *		Build the extract query of src in the current transaction, keeping
 *		an AccessShareLock on the source table: all columns of the table,
 *		partitioned table or materialized view, the rows that pass the
 *		filter operator and, when there is a watermark, that are past it,
 *		plus (with a late-row snapshot) rows at or below it whose inserting
 *		transaction that snapshot did not see; ordered by the filter column,
 *		then the primary key.  Identifiers are quoted, operators are the
 *		filter type's default btree operators named with their schema, every
 *		value is a typed parameter.  An ERROR for a missing table or column,
 *		a filter type without btree ordering, an unknown operator or a
 *		missing start_value.
 */
DeltaQuery *
delta_query_build(const DeltaSource *src)
{
	DeltaQuery *q = palloc0(sizeof(DeltaQuery));
	Oid			nsp;
	Oid			relid;
	Relation	rel;
	TupleDesc	desc;
	AttrNumber	filter_attnum = InvalidAttrNumber;
	int32		filter_typmod = -1;
	StringInfoData cols;
	StringInfoData order;
	Oid			opclass;
	Oid			opfamily;
	Oid			opcintype;
	char	   *f;
	char	   *relname;
	char	   *opwhere;
	char	   *p1;
	char	   *p2;
	int			ncols = 0;
	int			i;
	bool		is_null_op = strcmp(src->op, "null") == 0;

	nsp = get_namespace_oid(src->schema, true);
	relid = OidIsValid(nsp) ? get_relname_relid(src->table, nsp) : InvalidOid;
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("source table %s does not exist",
						quote_qualified_identifier(src->schema, src->table))));
	rel = relation_open(relid, AccessShareLock);
	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE &&
		rel->rd_rel->relkind != RELKIND_MATVIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("source %s is not a table",
						quote_qualified_identifier(src->schema, src->table)),
				 errhint("Delta loads read tables, partitioned tables and materialized views.")));
	desc = RelationGetDescr(rel);

	initStringInfo(&cols);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		if (ncols > 0)
			appendStringInfoString(&cols, ", ");
		appendStringInfoString(&cols, quote_identifier(NameStr(att->attname)));
		if (strcmp(NameStr(att->attname), src->filter_column) == 0)
		{
			filter_attnum = att->attnum;
			q->filter_index = ncols;
			q->filter_type = att->atttypid;
			filter_typmod = att->atttypmod;
			q->filter_collation = att->attcollation;
		}
		ncols++;
	}
	if (filter_attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" does not exist in %s", src->filter_column,
						quote_qualified_identifier(src->schema, src->table))));

	opclass = GetDefaultOpClass(q->filter_type, BTREE_AM_OID);
	if (!OidIsValid(opclass))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("filter column \"%s\" of type %s cannot be ordered", src->filter_column,
						format_type_be(q->filter_type))));
	opfamily = get_opclass_family(opclass);
	opcintype = get_opclass_input_type(opclass);
	q->order_proc = get_opfamily_proc(opfamily, opcintype, opcintype, BTORDER_PROC);

#define BTOP(strategy) op_sql(get_opfamily_member(opfamily, opcintype, opcintype, (strategy)))

	f = (char *) quote_identifier(src->filter_column);
	p1 = src->start_value ? typed_param(q, q->filter_type, filter_typmod, src->start_value) : NULL;
	p2 = src->end_value && (strcmp(src->op, "between") == 0 || strcmp(src->op, "notbetween") == 0)
		? typed_param(q, q->filter_type, filter_typmod, src->end_value) : NULL;

	if (strcmp(src->op, "lte") == 0 || strcmp(src->op, "ste") == 0)
		opwhere = psprintf("%s %s %s", f, BTOP(BTLessEqualStrategyNumber), p1);
	else if (strcmp(src->op, "gte") == 0)
		opwhere = psprintf("%s %s %s", f, BTOP(BTGreaterEqualStrategyNumber), p1);
	else if (strcmp(src->op, "eq") == 0)
		opwhere = psprintf("%s %s %s", f, BTOP(BTEqualStrategyNumber), p1);
	else if (strcmp(src->op, "noteq") == 0)
		opwhere = psprintf("NOT (%s %s %s)", f, BTOP(BTEqualStrategyNumber), p1);
	else if (strcmp(src->op, "between") == 0)
		opwhere = psprintf("%s %s %s AND %s %s %s", f, BTOP(BTGreaterEqualStrategyNumber), p1,
						   f, BTOP(BTLessEqualStrategyNumber), p2);
	else if (strcmp(src->op, "notbetween") == 0)
		opwhere = psprintf("(%s %s %s OR %s %s %s)", f, BTOP(BTLessStrategyNumber), p1,
						   f, BTOP(BTGreaterStrategyNumber), p2);
	else if (is_null_op)
		opwhere = psprintf("%s IS NULL", f);
	else if (strcmp(src->op, "notnull") == 0)
		opwhere = psprintf("%s IS NOT NULL", f);
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown filter_operator \"%s\"", src->op)));
	if (!is_null_op && strcmp(src->op, "notnull") != 0 && p1 == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("filter_operator \"%s\" needs start_value", src->op)));

	/* ORDER BY the filter column, then the primary key. */
	initStringInfo(&order);
	appendStringInfoString(&order, f);
	(void) RelationGetIndexList(rel);
	if (OidIsValid(rel->rd_pkindex))
	{
		HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(rel->rd_pkindex));
		Form_pg_index idx;

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for index %u", rel->rd_pkindex);
		idx = (Form_pg_index) GETSTRUCT(tup);
		for (i = 0; i < idx->indnkeyatts; i++)
		{
			AttrNumber	attnum = idx->indkey.values[i];

			if (attnum == filter_attnum || attnum <= 0)
				continue;
			appendStringInfo(&order, ", %s",
							 quote_identifier(NameStr(TupleDescAttr(desc, attnum - 1)->attname)));
		}
		ReleaseSysCache(tup);
	}

	relname = quote_qualified_identifier(src->schema, src->table);
	if (is_null_op)
	{
		char	   *late = src->late_snapshot ? late_condition(q, src->late_snapshot) : NULL;

		q->sql = psprintf("SELECT %s FROM %s AS t WHERE %s%s%s ORDER BY %s",
						  cols.data, relname, opwhere, late ? " AND " : "", late ? late : "",
						  order.data);
	}
	else if (src->watermark == NULL)
		q->sql = psprintf("SELECT %s FROM %s AS t WHERE %s ORDER BY %s",
						  cols.data, relname, opwhere, order.data);
	else
	{
		char	   *pw = typed_param(q, q->filter_type, filter_typmod, src->watermark);
		char	   *late = src->late_snapshot ? late_condition(q, src->late_snapshot) : NULL;
		char	   *gt = BTOP(BTGreaterStrategyNumber);

		if (late)
			q->sql = psprintf("SELECT %s FROM ("
							  "SELECT %s FROM %s AS t WHERE %s AND %s %s %s"
							  " UNION ALL "
							  "SELECT %s FROM %s AS t WHERE %s AND %s %s %s AND %s"
							  ") AS d ORDER BY %s",
							  cols.data,
							  cols.data, relname, opwhere, f, gt, pw,
							  cols.data, relname, opwhere, f, BTOP(BTLessEqualStrategyNumber), pw, late,
							  order.data);
		else
			q->sql = psprintf("SELECT %s FROM %s AS t WHERE %s AND %s %s %s ORDER BY %s",
							  cols.data, relname, opwhere, f, gt, pw, order.data);
	}
#undef BTOP

	/* Keep the lock: the query runs in this transaction. */
	relation_close(rel, NoLock);
	return q;
}
