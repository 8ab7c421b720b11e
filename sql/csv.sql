-- CSV files of an S3 source: the streaming reader (csv_parse_records), DMS
-- value typing (csv_render_value) and both together as a task reads a file
-- (csv_preview).
\set SHOW_CONTEXT never
CREATE EXTENSION dms_stream;

-- The seed's source endpoint: schema01.table01, IgnoreHeaderRows 1,
-- CsvNullValue NULL.  Every column but the key defaults to ColumnNullable
-- false, as in DMS.
SELECT dms_stream.create_endpoint('s3-source', 's3', 'source', $${
  "BucketName": "dms-s3-source", "BucketFolder": "sourcedata", "CdcPath": "changedata",
  "CsvDelimiter": ",", "CsvRowDelimiter": "\n", "IgnoreHeaderRows": "1", "Rfc4180": "y",
  "CsvNullValue": "NULL", "ExpectedBucketOwner": "123456789012",
  "ExternalTableDefinition": "{\"TableCount\":\"1\",\"Tables\":[{\"TableName\":\"table01\",\"TablePath\":\"schema01/table01/\",\"TableOwner\":\"schema01\",\"TableColumns\":[{\"ColumnName\":\"ingest_time\",\"ColumnType\":\"DATETIME\",\"ColumnNullable\":\"false\",\"ColumnIsPk\":\"true\"},{\"ColumnName\":\"doi\",\"ColumnType\":\"STRING\",\"ColumnLength\":\"30\"},{\"ColumnName\":\"id\",\"ColumnType\":\"INT8\"},{\"ColumnName\":\"value\",\"ColumnType\":\"NUMERIC\",\"ColumnPrecision\":\"5\",\"ColumnScale\":\"2\"},{\"ColumnName\":\"data_sig\",\"ColumnType\":\"STRING\",\"ColumnLength\":\"10\"}],\"TableColumnsTotal\":\"5\"}]}"
}$$, 'http://127.0.0.1:14580', 'us-east-1', 'path');

-- A full-load file: header, good rows, then one bad row of each kind.
SELECT line, operation, table_owner, table_name, message_data, error
  FROM dms_stream.csv_preview('s3-source', $csv$ingest_time,doi,id,value,data_sig
2020-01-09 04:13:38,10.1000/182,1,12.5,a1b2c3
2020-01-09 04:13:39.987654,"10.1000/""quoted"", with comma",2,-0.005,d4e5
2020-01-09T04:13:40Z,"10.1000/line
break",9223372036854775807,999.99,f6
2020-01-09 04:13:41,10.1000/183,3,1.5
2020-01-09 04:13:42,10.1000/184,four,1.5,x
2020-01-09 04:13:43,10.1000/this-doi-is-longer-than-thirty,5,1.5,x
2020-01-09 04:13:44,10.1000/185,6,1000,x
2020-01-09 04:13:45,10.1000/186,7,1.5,NULL
2020-01-09 04:13:46,10.1000/187,,1.5,x
2020-02-30 04:13:47,10.1000/188,8,1.5,x
2020-01-09 04:13:48,"10.1000/189"x,9,1.5,x
2020-01-09 04:13:49,10.1000/190,10,1.5,"NULL"
2020-01-09 04:13:50,"10.1000/191,11,1.5,x
$csv$);

-- max_rows, and the same file as bytes.
SELECT line, message_data ->> 'id' AS id, error IS NOT NULL AS failed
  FROM dms_stream.csv_preview('s3-source', E'h\n2020-01-09 04:13:38,a,1,1,x\n2020-01-09 04:13:38,b,2,2,x\n2020-01-09 04:13:38,c,3,3,x\n', max_rows => 2);
SELECT line, message_data ->> 'id' AS id
  FROM dms_stream.csv_preview('s3-source', convert_to(E'h\n2020-01-09 04:13:38,a,1,1,x\n', 'UTF8'));

-- Bytes that are not UTF-8 (and a NUL byte) are errors of their record.
SELECT line, message_data ->> 'doi' AS doi, error
  FROM dms_stream.csv_preview('s3-source',
       convert_to(E'h\n2020-01-09 04:13:38,caf', 'UTF8') || '\xe9'::bytea ||
       convert_to(E',1,1,x\n2020-01-09 04:13:38,caf\u00e9,2,2,x\n2020-01-09 04:13:38,a', 'UTF8') || '\x00'::bytea ||
       convert_to(E'b,3,3,x\n2020-01-09 04:13:38,\u20ac\U0001F600,4,4,x\n2020-01-09 04:13:38,x,5,5,', 'UTF8') || '\xc3'::bytea);

-- Every ColumnType: one row of values, one of unquoted empty fields (NULL),
-- one of quoted empty fields ("" is an empty STRING/CLOB/BYTE/BLOB and NULL
-- for other types).  The definition is given as a JSON object.
SELECT dms_stream.create_endpoint('types-src', 's3', 'source', $${
  "BucketName": "bucket",
  "ExternalTableDefinition": {"TableCount": 1, "Tables": [{"TableName": "all_types", "TablePath": "lab/all_types/",
    "TableOwner": "lab", "TableColumnsTotal": 19, "TableColumns": [
    {"ColumnName": "c_byte", "ColumnType": "BYTE", "ColumnLength": 4, "ColumnNullable": true},
    {"ColumnName": "c_date", "ColumnType": "DATE", "ColumnNullable": true},
    {"ColumnName": "c_time", "ColumnType": "TIME", "ColumnNullable": true},
    {"ColumnName": "c_datetime", "ColumnType": "DATETIME", "ColumnScale": 3, "ColumnNullable": true},
    {"ColumnName": "c_int1", "ColumnType": "INT1", "ColumnNullable": true},
    {"ColumnName": "c_int2", "ColumnType": "INT2", "ColumnNullable": true},
    {"ColumnName": "c_int4", "ColumnType": "INT4", "ColumnNullable": true},
    {"ColumnName": "c_int8", "ColumnType": "INT8", "ColumnNullable": true},
    {"ColumnName": "c_numeric", "ColumnType": "NUMERIC", "ColumnPrecision": 10, "ColumnScale": 3, "ColumnNullable": true},
    {"ColumnName": "c_real4", "ColumnType": "REAL4", "ColumnNullable": true},
    {"ColumnName": "c_real8", "ColumnType": "REAL8", "ColumnNullable": true},
    {"ColumnName": "c_string", "ColumnType": "STRING", "ColumnLength": 20, "ColumnNullable": true},
    {"ColumnName": "c_uint1", "ColumnType": "UINT1", "ColumnNullable": true},
    {"ColumnName": "c_uint2", "ColumnType": "UINT2", "ColumnNullable": true},
    {"ColumnName": "c_uint4", "ColumnType": "UINT4", "ColumnNullable": true},
    {"ColumnName": "c_uint8", "ColumnType": "UINT8", "ColumnNullable": true},
    {"ColumnName": "c_blob", "ColumnType": "BLOB", "ColumnNullable": true},
    {"ColumnName": "c_clob", "ColumnType": "CLOB", "ColumnNullable": true},
    {"ColumnName": "c_boolean", "ColumnType": "BOOLEAN", "ColumnNullable": true}]}]}
}$$);
SELECT p.line, p.error, e.key, e.value
  FROM dms_stream.csv_preview('types-src', $csv$0xCAFE,2024-02-29,23:59:59.5,2024-02-29 23:59:59.123456,-128,32767,-2147483648,9223372036854775807,-1234567.8915,2.5,-0.1,"héllo ""world""",255,65535,4294967295,18446744073709551615,0xdeadbeef,"multi
line text",YES
,,,,,,,,,,,,,,,,,,
"","","","","","","","","","","","","","","","","","",""
$csv$) p LEFT JOIN LATERAL jsonb_each(p.message_data) e ON true
 ORDER BY p.line, e.key;

-- Out-of-range and unparsable values of every type, one row each.
SELECT line, error
  FROM dms_stream.csv_preview('types-src', $csv$0xCAF,,,,,,,,,,,,,,,,,,
,2024-13-01,,,,,,,,,,,,,,,,,
,,25:00:00,,,,,,,,,,,,,,,,
,,,2023-02-29 00:00:00,,,,,,,,,,,,,,,
,,,,128,,,,,,,,,,,,,,
,,,,,32768,,,,,,,,,,,,,
,,,,,,2147483648,,,,,,,,,,,,
,,,,,,,-9223372036854775809,,,,,,,,,,,
,,,,,,,,12345678.9,,,,,,,,,,
,,,,,,,,,3.5e38,,,,,,,,,
,,,,,,,,,,NaN,,,,,,,,
,,,,,,,,,,,,256,,,,,,
,,,,,,,,,,,,,-1,,,,,
,,,,,,,,,,,,,,4294967296,,,,
,,,,,,,,,,,,,,,18446744073709551616,,,
,,,,,,,,,,,,,,,,0xZZ,,
,,,,,,,,,,,,,,,,,,maybe
$csv$);

-- Truncation: the value is cut at a character boundary and the row is
-- returned with its error (the task applies DataTruncationErrorPolicy).
SELECT line, message_data ->> 'c_string' AS c_string, message_data ->> 'c_byte' AS c_byte, error
  FROM dms_stream.csv_preview('types-src', E'0x0102030405,,,,,,,,,,,\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9,,,,,,,\n');

-- Every ColumnDateFormat.
SELECT dms_stream.create_endpoint('dates-src', 's3', 'source', $${
  "BucketName": "bucket",
  "ExternalTableDefinition": {"TableCount": 1, "Tables": [{"TableName": "dates", "TablePath": "lab/dates/",
    "TableOwner": "lab", "TableColumnsTotal": 10, "TableColumns": [
    {"ColumnName": "f1", "ColumnType": "DATETIME", "ColumnDateFormat": "YYYY-MM-dd HH:mm:ss"},
    {"ColumnName": "f2", "ColumnType": "DATETIME", "ColumnDateFormat": "YYYY-MM-dd HH:mm:ss.F", "ColumnScale": 6},
    {"ColumnName": "f3", "ColumnType": "DATETIME", "ColumnDateFormat": "YYYY/MM/dd HH:mm:ss"},
    {"ColumnName": "f4", "ColumnType": "DATETIME", "ColumnDateFormat": "YYYY/MM/dd HH:mm:ss.F", "ColumnScale": 3},
    {"ColumnName": "f5", "ColumnType": "DATETIME", "ColumnDateFormat": "MM/dd/YYYY HH:mm:ss"},
    {"ColumnName": "f6", "ColumnType": "DATETIME", "ColumnDateFormat": "MM/dd/YYYY HH:mm:ss.F", "ColumnScale": 9},
    {"ColumnName": "f7", "ColumnType": "DATETIME", "ColumnDateFormat": "YYYYMMdd HH:mm:ss"},
    {"ColumnName": "f8", "ColumnType": "DATETIME", "ColumnDateFormat": "YYYYMMdd HH:mm:ss.F", "ColumnScale": 1},
    {"ColumnName": "d", "ColumnType": "DATE", "ColumnDateFormat": "MM/dd/YYYY HH:mm:ss"},
    {"ColumnName": "t", "ColumnType": "TIME", "ColumnDateFormat": "YYYY/MM/dd HH:mm:ss.F"}]}]}
}$$);
SELECT p.line, p.error, e.key, e.value
  FROM dms_stream.csv_preview('dates-src', $csv$2020-01-09 04:13:38,2020-01-09 04:13:38.25,2020/01/09 04:13:38,2020/01/09 04:13:38.123456,01/09/2020 04:13:38,1/9/2020 4:13:38.123456789,20200109 04:13:38,20200109 04:13:38.99,12/31/1999 00:00:00,2020/01/09 04:13:38.5
2020-01-09 04:13:38,2020-01-09 04:13:38,2020/01/09 04:13:38,2020/01/09 04:13:38,01/09/2020 04:13:38,01/09/2020 04:13:38,20200109 04:13:38,20200109 04:13:38,12/31/1999,04:13:38
$csv$) p LEFT JOIN LATERAL jsonb_each(p.message_data) e ON true
 ORDER BY p.line, e.key;
SELECT line, error
  FROM dms_stream.csv_preview('dates-src', $csv$2020-01-09 04:13:38.5,2020-01-09 04:13:38,2020/01/09 04:13:38,2020/01/09 04:13:38,01/09/2020 04:13:38,01/09/2020 04:13:38,20200109 04:13:38,20200109 04:13:38,12/31/1999,04:13:38
2020-01-09 04:13:38,2020/01/09 04:13:38,2020/01/09 04:13:38,2020/01/09 04:13:38,01/09/2020 04:13:38,01/09/2020 04:13:38,20200109 04:13:38,20200109 04:13:38,12/31/1999,04:13:38
2020-01-09 04:13:38,2020-01-09 04:13:38,2020/01/09 04:13:38,2020/01/09 04:13:38,02/30/2020 04:13:38,01/09/2020 04:13:38,20200109 04:13:38,20200109 04:13:38,12/31/1999,04:13:38
2020-01-09 04:13:38,2020-01-09 04:13:38,2020/01/09 04:13:38,2020/01/09 04:13:38,01/09/2020 04:13:38,01/09/2020 04:13:38,2020-01-09 04:13:38,20200109 04:13:38,12/31/1999,04:13:38
2020-01-09 04:13:38,2020-01-09 04:13:38,2020/01/09 04:13:38,2020/01/09 04:13:38,01/09/2020 04:13:38,01/09/2020 04:13:38,20200109 04:13:38,20200109 04:13:38,1999-12-31,04:13:38
2020-01-09 04:13:38,2020-01-09 04:13:38,2020/01/09 04:13:38,2020/01/09 04:13:38,01/09/2020 04:13:38,01/09/2020 04:13:38,20200109 04:13:38,20200109 04:13:38,12/31/1999,04:13:61
$csv$);

-- Quoting and delimiters, on a small table (a STRING, b INT4, c STRING).
\set small_etd '{"TableCount": 1, "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": 3, "TableColumns": [{"ColumnName": "a", "ColumnType": "STRING", "ColumnLength": 40, "ColumnNullable": true}, {"ColumnName": "b", "ColumnType": "INT4", "ColumnNullable": true}, {"ColumnName": "c", "ColumnType": "STRING", "ColumnLength": 40, "ColumnNullable": true}]}]}'
SELECT dms_stream.create_endpoint('q-default', 's3', 'source',
       jsonb_build_object('BucketName', 'bucket', 'ExternalTableDefinition', :'small_etd'::jsonb));
SELECT dms_stream.create_endpoint('q-off', 's3', 'source',
       jsonb_build_object('BucketName', 'bucket', 'Rfc4180', 'n', 'CsvNullValue', '\N',
                          'ExternalTableDefinition', :'small_etd'::jsonb));
SELECT dms_stream.create_endpoint('q-pipe', 's3', 'source',
       jsonb_build_object('BucketName', 'bucket', 'CsvDelimiter', '|', 'IgnoreHeaderRows', 1,
                          'ExternalTableDefinition', :'small_etd'::jsonb));
-- The escapes \t and \r\n written literally, as DMS CLI users write them.
SELECT dms_stream.create_endpoint('q-tab', 's3', 'source',
       jsonb_build_object('BucketName', 'bucket', 'CsvDelimiter', '\t', 'CsvRowDelimiter', '\r\n',
                          'ExternalTableDefinition', :'small_etd'::jsonb));
SELECT dms_stream.create_endpoint('q-multi', 's3', 'source',
       jsonb_build_object('BucketName', 'bucket', 'CsvDelimiter', E'\u00a6~', 'CsvRowDelimiter', '<EOR>',
                          'Rfc4180', false, 'ExternalTableDefinition', :'small_etd'::jsonb));

-- RFC 4180: delimiters, quotes and row delimiters inside quotes; "" is an
-- empty string, an empty field NULL; a quote inside an unquoted field is a
-- literal; blanks are kept; a UTF-8 BOM is skipped, a blank line ignored,
-- CR LF ends a row as LF does, and the last row may lack its row delimiter.
SELECT line, message_data, error
  FROM dms_stream.csv_preview('q-default', E'\ufeffplain,1,x\n"a,b",2,"say ""hi"""\n"multi\nline",3,"x\ny"\n\n"",,\nab"c,4,"d"""\n" lead",5,  spaced  \n"x" ,6,y\r\n"crlf",8,"z"\r\nlast,9,z');
-- Rfc4180 n: quotes are data, a delimiter always ends a field; CsvNullValue.
SELECT line, message_data, error
  FROM dms_stream.csv_preview('q-off', E'"a,b",1,"c"\n"q""q",2,\\N\n\\N,\\N,"\\N"\n');
-- "|" and a header row.
SELECT line, message_data, error
  FROM dms_stream.csv_preview('q-pipe', E'a|b|c\nx,y|1|"p|q"\n|2|\n');
-- Tab and CR LF; a bare LF inside a field is data.
SELECT line, message_data, error
  FROM dms_stream.csv_preview('q-tab', E'a b\t1\tc,d\r\n"t\tab"\t2\tline\nfeed\r\n');
-- A multi-byte delimiter and a row delimiter of several characters.
SELECT line, message_data, error
  FROM dms_stream.csv_preview('q-multi', E'x\u00a6y\u00a6~1\u00a6~z<EOR>"q"\u00a6~2\u00a6~<EOR<EOR>w\u00a6~3\u00a6~end<EOR>');

-- CDC files: operation, table name, schema name, then the columns; the
-- operation as keyword or initial in any case; rows routed by schema and
-- table; the optional leading I column of full-load files.
SELECT dms_stream.create_endpoint('cdc-src', 's3', 'source', $${
  "BucketName": "bucket", "CdcPath": "changes",
  "ExternalTableDefinition": {"TableCount": 2, "Tables": [
    {"TableName": "employee", "TablePath": "hr/employee/", "TableOwner": "hr", "TableColumnsTotal": 3, "TableColumns": [
      {"ColumnName": "Id", "ColumnType": "INT8", "ColumnIsPk": true},
      {"ColumnName": "LastName", "ColumnType": "STRING", "ColumnLength": 20},
      {"ColumnName": "HireDate", "ColumnType": "DATE", "ColumnNullable": true}]},
    {"TableName": "dept", "TablePath": "hr/dept/", "TableOwner": "hr", "TableColumnsTotal": 2, "TableColumns": [
      {"ColumnName": "DeptId", "ColumnType": "INT4", "ColumnIsPk": true},
      {"ColumnName": "Name", "ColumnType": "STRING", "ColumnLength": 20}]}]}
}$$);
SELECT line, operation, table_owner, table_name, message_data, error
  FROM dms_stream.csv_preview('cdc-src', $csv$INSERT,employee,hr,101,Smith,2014-06-04
UPDATE,employee,hr,101,Smith,2015-10-08
DELETE,employee,hr,101,Smith,2015-10-08
I,dept,hr,1,Sales
u,dept,hr,1,Marketing
d,dept,hr,1,Marketing
insert,employee,hr,102,Jones,
Update,dept,hr,2,R&D
dElEtE,dept,hr,2,R&D
UPSERT,dept,hr,3,Ops
X,dept,hr,3,Ops
INSERT,employees,hr,103,Brown,
INSERT,hr,employee,103,Brown,
INSERT,employee,hr,103,Brown
INSERT,employee
INSERT,dept,hr,x4,Ops
$csv$, cdc => true);
SELECT line, operation, message_data, error
  FROM dms_stream.csv_preview('cdc-src', E'I,201,Lee,2020-02-02\n202,Kim,\ni,203,Park,\nU,204,Choi,\n', 'hr', 'employee');
SELECT line, operation, table_name, message_data, error
  FROM dms_stream.csv_preview('cdc-src', E'7,Legal\n', table_name => 'dept');

-- The reader itself: fields, quoting and positions are the same whatever
-- the chunks it is fed; end_offset and end_line resume a file exactly.
SELECT * FROM dms_stream.csv_parse_records('q-default',
       convert_to(E'\ufeffa,"b\n""c"",d",e\n\nx,y,\n"q"\r\nlast', 'UTF8'), 1);
SELECT count(DISTINCT r) AS distinct_results FROM (
  SELECT array_agg(p::text ORDER BY p.start_offset) AS r
    FROM generate_series(1, 8) c,
         LATERAL dms_stream.csv_parse_records('q-default',
                 convert_to(E'\ufeffa,"b\n""c"",d",e\n\nx,y,\n"q"\r\nlast', 'UTF8'), c) p
   GROUP BY c) s;
-- resume after the first record (end_offset 19, end_line 3)
SELECT line, start_offset, end_offset, fields
  FROM dms_stream.csv_parse_records('q-default',
       substring(convert_to(E'\ufeffa,"b\n""c"",d",e\n\nx,y,\n"q"\r\nlast', 'UTF8') FROM 20), 3, NULL, 19, 3);
-- IgnoreHeaderRows skips the first record of a file, not of a resumed read
SELECT line, fields FROM dms_stream.csv_parse_records('q-pipe', convert_to(E'h|1\nr|2\n', 'UTF8'));
SELECT line, fields FROM dms_stream.csv_parse_records('q-pipe', convert_to(E'r|2\nr|3\n', 'UTF8'), start_offset => 4, start_line => 2);

-- Records longer than max_record_bytes are errors and the reader goes on at
-- the next row delimiter outside quotes, whatever the chunk size.
SELECT c AS chunk_bytes, line, start_offset, end_offset, end_line, error, raw
  FROM generate_series(1, 3) g,
       LATERAL (VALUES (CASE g WHEN 1 THEN 1 WHEN 2 THEN 7 ELSE 100000 END)) v(c),
       LATERAL dms_stream.csv_parse_records('q-default',
               convert_to(E'ok,1\n' || repeat('x', 40) || E'\nfine,2\na,"' || repeat('y', 30) || E'\nmore",3\nafter,4\n', 'UTF8'),
               c, 20)
 ORDER BY c, start_offset;
-- An unclosed quote in a record beyond the limit: no resynchronisation is
-- possible, the error says how much of the file is lost and reading stops.
SELECT line, start_offset, end_offset, error
  FROM dms_stream.csv_parse_records('q-default', convert_to(E'ok,1\nx,"open' || repeat(E'zz\n', 30), 'UTF8'), 8, 20);
-- Unclosed quote, text after a closing quote, bad UTF-8, NUL byte.
SELECT line, fields, error, raw
  FROM dms_stream.csv_parse_records('q-default',
       '\x6f6b0a612c226222632c640a61ff620a6e00780a6869c3a90a22756e636c6f7365640a6c617374'::bytea, 2);

-- Values one at a time, as rendered in messages (exact JSON text).
SELECT t AS type, v AS value, r.json, r.error
  FROM (VALUES ('INT1', '127'), ('INT1', '-128'), ('INT1', '128'), ('INT1', ' +007 '), ('INT1', '-0'),
               ('INT1', '1.0'), ('INT1', '1e2'), ('INT2', '-32768'), ('INT2', '-32769'),
               ('INT4', '2147483647'), ('INT4', '2147483648'),
               ('INT8', '-9223372036854775808'), ('INT8', '9223372036854775808'),
               ('UINT1', '255'), ('UINT1', '256'), ('UINT1', '-1'), ('UINT1', '-0'), ('UINT2', '65536'),
               ('UINT4', '4294967295'), ('UINT8', '18446744073709551615'), ('UINT8', '18446744073709551616'),
               ('UINT8', '99999999999999999999999999'),
               ('REAL4', '0.1'), ('REAL4', '3.4028234e38'), ('REAL4', '3.5e38'), ('REAL4', '1e-50'),
               ('REAL8', '0.1'), ('REAL8', '1e20'), ('REAL8', '1.5E-7'), ('REAL8', '123456789012345678'),
               ('REAL8', '.5'), ('REAL8', '-0'), ('REAL8', 'NaN'), ('REAL8', '-Infinity'), ('REAL8', 'inf'),
               ('REAL8', '0x1p3'), ('REAL8', '1e400'), ('REAL8', '1,5'),
               ('BOOLEAN', 'true'), ('BOOLEAN', 'FALSE'), ('BOOLEAN', 'T'), ('BOOLEAN', 'f'), ('BOOLEAN', '1'),
               ('BOOLEAN', '0'), ('BOOLEAN', 'Yes'), ('BOOLEAN', 'NO'), ('BOOLEAN', 'y'), ('BOOLEAN', 'N'),
               ('BOOLEAN', 'on'), ('BOOLEAN', '2')) x(t, v),
       LATERAL dms_stream.csv_render_value(jsonb_build_object('ColumnName', 'c', 'ColumnType', t), v) r;
SELECT p AS precision, s AS scale, v AS value, r.json, r.error
  FROM (VALUES (5, 2, '12.5'), (5, 2, '12.345'), (5, 2, '-12.345'), (5, 2, '12.3449'), (5, 2, '999.994'),
               (5, 2, '999.995'), (5, 2, '1000'), (5, 2, '-0.004'), (5, 2, '0.005'), (5, 2, '.5'),
               (5, 2, '0012.5e1'), (5, 2, '1.2345E2'), (5, 2, '1e-9'), (5, 2, '0'), (5, 2, '-0'),
               (5, 2, '1e999999999'), (5, 2, 'NaN'), (5, 2, '12,5'), (5, 2, '1.2.3'), (5, 2, 'e5'),
               (3, 0, '0.5'), (3, 0, '0.49'), (3, 0, '999.4'), (3, 0, '999.5'), (3, 3, '0.9994'), (3, 3, '0.9995'),
               (38, 0, '99999999999999999999999999999999999999'),
               (38, 31, '1234567.12345678901234567890123456789012'),
               (38, 31, '0.00000000000000000000000000000005')) x(p, s, v),
       LATERAL dms_stream.csv_render_value(jsonb_build_object('ColumnName', 'c', 'ColumnType', 'NUMERIC',
                                            'ColumnPrecision', p, 'ColumnScale', s), v) r;
SELECT c ->> 'ColumnType' AS type, v AS value, q AS quoted, r.*
  FROM (VALUES ('{"ColumnType": "STRING", "ColumnLength": 5}'::jsonb, 'hello', false),
               ('{"ColumnType": "STRING", "ColumnLength": 5}', 'héllo', false),
               ('{"ColumnType": "STRING", "ColumnLength": 5}', 'a"b\c', false),
               ('{"ColumnType": "STRING", "ColumnLength": 5}', E'\t\n\r\b\f', false),
               ('{"ColumnType": "STRING", "ColumnLength": 5}', E'\x01\x1f\x7f', false),
               ('{"ColumnType": "STRING", "ColumnLength": 5}', '  x  ', false),
               ('{"ColumnType": "STRING", "ColumnLength": 5}', '', true),
               ('{"ColumnType": "STRING", "ColumnLength": 5}', '', false),
               ('{"ColumnType": "STRING", "ColumnLength": 5, "ColumnNullable": true}', '', false),
               ('{"ColumnType": "STRING", "ColumnLength": 5, "ColumnNullable": true}', 'NULL', false),
               ('{"ColumnType": "CLOB"}', E'\u20acuro \U0001F600', false),
               ('{"ColumnType": "BYTE", "ColumnLength": 2}', '0xcafe', false),
               ('{"ColumnType": "BYTE", "ColumnLength": 2}', 'CAFEBABE', false),
               ('{"ColumnType": "BYTE", "ColumnLength": 2}', '0xcaf', false),
               ('{"ColumnType": "BYTE", "ColumnLength": 2}', '0xcage', false),
               ('{"ColumnType": "BLOB"}', '0X00ff', false),
               ('{"ColumnType": "BLOB"}', '', true),
               ('{"ColumnType": "INT4", "ColumnNullable": true}', '', true),
               ('{"ColumnType": "INT4", "ColumnNullable": true}', '   ', false)) x(c, v, q),
       LATERAL dms_stream.csv_render_value(c || '{"ColumnName": "c"}', v, q) r;
SELECT * FROM dms_stream.csv_render_value('{"ColumnName": "c", "ColumnType": "STRING", "ColumnLength": 9, "ColumnNullable": true}',
                                          'NULL', csv_null_value => 'NULL');
SELECT * FROM dms_stream.csv_render_value('{"ColumnName": "c", "ColumnType": "STRING", "ColumnLength": 9, "ColumnNullable": true}',
                                          'NULL', true, csv_null_value => 'NULL');
SELECT * FROM dms_stream.csv_render_value('{"ColumnName": "c", "ColumnType": "BLOB"}', '0xCAFE', no_hex_prefix => true);
SELECT c ->> 'ColumnType' AS type, c ->> 'ColumnScale' AS scale, c ->> 'ColumnDateFormat' AS format, v AS value, r.json, r.error
  FROM (VALUES ('{"ColumnType": "DATE"}'::jsonb, '2020-01-09'), ('{"ColumnType": "DATE"}', '2020-1-9'),
               ('{"ColumnType": "DATE"}', '2020-01-09 10:11:12'), ('{"ColumnType": "DATE"}', '2020-02-30'),
               ('{"ColumnType": "DATE"}', '2019-02-29'), ('{"ColumnType": "DATE"}', '2000-02-29'),
               ('{"ColumnType": "DATE"}', '1900-02-29'), ('{"ColumnType": "DATE"}', '2020-04-31'),
               ('{"ColumnType": "DATE"}', '0000-01-01'), ('{"ColumnType": "DATE"}', '2020-00-10'),
               ('{"ColumnType": "DATE"}', '09/01/2020'),
               ('{"ColumnType": "TIME"}', '04:13:38'), ('{"ColumnType": "TIME"}', '4:13:38.123456789'),
               ('{"ColumnType": "TIME"}', '04:13:38.5'), ('{"ColumnType": "TIME"}', '2020-01-09 04:13:38'),
               ('{"ColumnType": "TIME"}', '24:00:00'), ('{"ColumnType": "TIME"}', '12:00:60'),
               ('{"ColumnType": "TIME"}', '2020-01-09'),
               ('{"ColumnType": "DATETIME"}', '2020-01-09 04:13:38'),
               ('{"ColumnType": "DATETIME"}', '2020-01-09T04:13:38.999Z'),
               ('{"ColumnType": "DATETIME", "ColumnScale": 3}', '2020-01-09T04:13:38.9'),
               ('{"ColumnType": "DATETIME", "ColumnScale": 6}', '2020-01-09 04:13:38.1234567'),
               ('{"ColumnType": "DATETIME", "ColumnScale": 9}', '2020-01-09 04:13:38.123456789123'),
               ('{"ColumnType": "DATETIME"}', '2020-01-09'),
               ('{"ColumnType": "DATETIME"}', '2020-01-09 04:13'),
               ('{"ColumnType": "DATETIME"}', '2020-01-09 04:13:38+02:00'),
               ('{"ColumnType": "DATETIME"}', '2020-01-09 04:13:38.'),
               ('{"ColumnType": "DATETIME", "ColumnDateFormat": "YYYY-MM-dd HH:mm:ss"}', '2020-01-09 04:13:38.5'),
               ('{"ColumnType": "DATETIME", "ColumnDateFormat": "YYYY-MM-dd HH:mm:ss"}', '2020-01-09T04:13:38'),
               ('{"ColumnType": "DATETIME", "ColumnDateFormat": "YYYY-MM-dd HH:mm:ss"}', '2020-01-09 04:13:38Z'),
               ('{"ColumnType": "DATETIME", "ColumnDateFormat": "YYYYMMdd HH:mm:ss"}', '2020019 04:13:38'),
               ('{"ColumnType": "DATETIME", "ColumnDateFormat": "MM/dd/YYYY HH:mm:ss.F", "ColumnScale": 2}', '12/31/1999 23:59:59.999'),
               ('{"ColumnType": "DATE", "ColumnDateFormat": "YYYYMMdd HH:mm:ss"}', '20200109'),
               ('{"ColumnType": "TIME", "ColumnDateFormat": "MM/dd/YYYY HH:mm:ss"}', '01/09/2020 04:13:38'),
               ('{"ColumnType": "TIME", "ColumnDateFormat": "MM/dd/YYYY HH:mm:ss"}', '04:13:38.1')) x(c, v),
       LATERAL dms_stream.csv_render_value(c || '{"ColumnName": "c"}', v) r;

-- Misuse.
-- 1. not an S3 source endpoint
SELECT dms_stream.create_endpoint('kin', 'kinesis', 'target', '{"StreamName": "s"}');
SELECT * FROM dms_stream.csv_preview('kin', 'a');
-- 2. unknown endpoint
SELECT * FROM dms_stream.csv_preview('nope', 'a');
-- 3. table names with a CDC file
SELECT * FROM dms_stream.csv_preview('cdc-src', 'a', 'hr', 'dept', cdc => true);
-- 4. which table?  unknown table
SELECT * FROM dms_stream.csv_preview('cdc-src', 'a');
SELECT * FROM dms_stream.csv_preview('cdc-src', 'a', 'hr', 'nope');
-- 5. bad arguments
SELECT * FROM dms_stream.csv_preview('s3-source', 'a', max_rows => -1);
SELECT * FROM dms_stream.csv_preview('s3-source', NULL::text);
SELECT * FROM dms_stream.csv_parse_records('s3-source', 'a', 0);
SELECT * FROM dms_stream.csv_parse_records('s3-source', 'a', max_record_bytes => 1);
SELECT * FROM dms_stream.csv_render_value('{"ColumnName": "c", "ColumnType": "STRING"}', 'x');
SELECT * FROM dms_stream.csv_render_value('{"ColumnName": "c", "ColumnType": "INT4"}', NULL);

-- Privileges: admin only (endpoint settings include credentials), and
-- csv_scan_file also needs pg_read_server_files.
CREATE ROLE regress_csv_user;
CREATE ROLE regress_csv_admin IN ROLE dms_stream_admin;
SET ROLE regress_csv_user;
SELECT * FROM dms_stream.csv_preview('s3-source', 'a');
SELECT * FROM dms_stream.csv_render_value('{"ColumnName": "c", "ColumnType": "INT4"}', '1');
SET ROLE regress_csv_admin;
SELECT line, error FROM dms_stream.csv_preview('s3-source', E'h\nx\n');
SELECT * FROM dms_stream.csv_scan_file('s3-source', '/nonexistent.csv');
RESET ROLE;
SELECT * FROM dms_stream.csv_scan_file('s3-source', '/nonexistent.csv');
DROP ROLE regress_csv_user;
DROP ROLE regress_csv_admin;

DROP EXTENSION dms_stream;
