-- External table definitions: the DMS JSON as documented, and every way it
-- can be wrong.
\set SHOW_CONTEXT never
CREATE EXTENSION dms_stream;

-- The guide's example, values written as strings, plus NUMERIC and
-- fractional DATETIME columns and JSON numbers/booleans.
SELECT * FROM dms_stream.parse_external_table_definition($${
    "TableCount": "1",
    "Tables": [
        {
            "TableName": "employee",
            "TablePath": "hr/employee/",
            "TableOwner": "hr",
            "TableColumns": [
                {"ColumnName": "Id", "ColumnType": "INT8", "ColumnNullable": "false", "ColumnIsPk": "true"},
                {"ColumnName": "LastName", "ColumnType": "STRING", "ColumnLength": "20"},
                {"ColumnName": "FirstName", "ColumnType": "STRING", "ColumnLength": "30"},
                {"ColumnName": "HireDate", "ColumnType": "DATETIME", "ColumnScale": "3",
                 "ColumnDateFormat": "YYYY-MM-dd HH:mm:ss.F"},
                {"ColumnName": "OfficeLocation", "ColumnType": "STRING", "ColumnLength": 20, "ColumnNullable": true},
                {"ColumnName": "HourlyRate", "ColumnType": "numeric", "ColumnPrecision": 5, "ColumnScale": 2}
            ],
            "TableColumnsTotal": 6
        }
    ]
}$$);

-- Every column type DMS lists for an S3 source.
SELECT column_ordinal, column_type, column_length, column_precision, column_scale
  FROM dms_stream.parse_external_table_definition($${"TableCount": 1, "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s",
  "TableColumnsTotal": 19, "TableColumns": [
   {"ColumnName": "c1", "ColumnType": "BYTE", "ColumnLength": 16},
   {"ColumnName": "c2", "ColumnType": "DATE", "ColumnDateFormat": "YYYY/MM/dd HH:mm:ss"},
   {"ColumnName": "c3", "ColumnType": "TIME"},
   {"ColumnName": "c4", "ColumnType": "DATETIME", "ColumnScale": 9},
   {"ColumnName": "c5", "ColumnType": "INT1"}, {"ColumnName": "c6", "ColumnType": "INT2"},
   {"ColumnName": "c7", "ColumnType": "INT4"}, {"ColumnName": "c8", "ColumnType": "INT8"},
   {"ColumnName": "c9", "ColumnType": "NUMERIC", "ColumnPrecision": 38, "ColumnScale": 31},
   {"ColumnName": "c10", "ColumnType": "REAL4"}, {"ColumnName": "c11", "ColumnType": "REAL8"},
   {"ColumnName": "c12", "ColumnType": "STRING", "ColumnLength": 2147483647},
   {"ColumnName": "c13", "ColumnType": "UINT1"}, {"ColumnName": "c14", "ColumnType": "UINT2"},
   {"ColumnName": "c15", "ColumnType": "UINT4"}, {"ColumnName": "c16", "ColumnType": "UINT8"},
   {"ColumnName": "c17", "ColumnType": "BLOB"}, {"ColumnName": "c18", "ColumnType": "CLOB"},
   {"ColumnName": "c19", "ColumnType": "BOOLEAN"}]}]}$$);

-- Malformed definitions.
-- 1. not JSON
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": "1", "Tables": [');
-- 2. syntax error on a later line
SELECT * FROM dms_stream.parse_external_table_definition(E'{\n  "TableCount": "1",\n  "Tables": [ {"TableName": "a" "TablePath": "x"} ]\n}');
-- 3. not an object
SELECT * FROM dms_stream.parse_external_table_definition('[1, 2]');
-- 4. unknown top-level key (wrong case)
SELECT * FROM dms_stream.parse_external_table_definition('{"tableCount": "1", "Tables": []}');
-- 5. Tables missing
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": "1"}');
-- 6. TableCount does not match
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": "2", "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": "1", "TableColumns": [{"ColumnName": "a", "ColumnType": "INT4"}]}]}');
-- 7. TableCount not a number
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": "one", "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": "1", "TableColumns": [{"ColumnName": "a", "ColumnType": "INT4"}]}]}');
-- 8. TableColumnsTotal does not match
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": "1", "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": "3", "TableColumns": [{"ColumnName": "a", "ColumnType": "INT4"}]}]}');
-- 9. TableName missing
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": "1", "Tables": [{"TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": "1", "TableColumns": [{"ColumnName": "a", "ColumnType": "INT4"}]}]}');
-- 10. unknown ColumnType
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": "1", "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": "2", "TableColumns": [{"ColumnName": "a", "ColumnType": "INT4"}, {"ColumnName": "b", "ColumnType": "VARCHAR"}]}]}');
-- 11. STRING without ColumnLength
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": "1", "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": "1", "TableColumns": [{"ColumnName": "a", "ColumnType": "STRING"}]}]}');
-- 12. NUMERIC without precision
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": "1", "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": "1", "TableColumns": [{"ColumnName": "v", "ColumnType": "NUMERIC", "ColumnScale": "2"}]}]}');
-- 13. NUMERIC precision over 38
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": "1", "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": "4", "TableColumns": [{"ColumnName": "a", "ColumnType": "INT4"}, {"ColumnName": "b", "ColumnType": "INT4"}, {"ColumnName": "c", "ColumnType": "INT4"}, {"ColumnName": "v", "ColumnType": "NUMERIC", "ColumnPrecision": "39"}]}]}');
-- 14. NUMERIC scale greater than precision
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": "1", "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": "1", "TableColumns": [{"ColumnName": "v", "ColumnType": "NUMERIC", "ColumnPrecision": "5", "ColumnScale": "6"}]}]}');
-- 15. DATETIME with 10 fractional digits
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": "1", "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": "1", "TableColumns": [{"ColumnName": "d", "ColumnType": "DATETIME", "ColumnScale": "10"}]}]}');
-- 16. ColumnDateFormat not in the documented list
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": "1", "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": "1", "TableColumns": [{"ColumnName": "d", "ColumnType": "DATE", "ColumnDateFormat": "dd.MM.YYYY"}]}]}');
-- 17. ColumnDateFormat on a STRING column
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": "1", "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": "1", "TableColumns": [{"ColumnName": "d", "ColumnType": "STRING", "ColumnLength": "10", "ColumnDateFormat": "YYYYMMdd HH:mm:ss"}]}]}');
-- 18. ColumnNullable not a boolean
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": "1", "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": "1", "TableColumns": [{"ColumnName": "a", "ColumnType": "INT4", "ColumnNullable": "maybe"}]}]}');
-- 19. duplicate column name
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": "1", "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": "2", "TableColumns": [{"ColumnName": "a", "ColumnType": "INT4"}, {"ColumnName": "a", "ColumnType": "INT8"}]}]}');
-- 20. duplicate table
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": "2", "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": "1", "TableColumns": [{"ColumnName": "a", "ColumnType": "INT4"}]}, {"TableName": "t", "TablePath": "s/t2/", "TableOwner": "s", "TableColumnsTotal": "1", "TableColumns": [{"ColumnName": "a", "ColumnType": "INT4"}]}]}');
-- 21. duplicate key in one object
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": "1", "TableCount": "1", "Tables": []}');
-- 22. ColumnLength on an INT column
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": "1", "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": "1", "TableColumns": [{"ColumnName": "a", "ColumnType": "INT4", "ColumnLength": "4"}]}]}');
-- 23. negative length written as a string
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": "1", "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": "1", "TableColumns": [{"ColumnName": "a", "ColumnType": "STRING", "ColumnLength": "-5"}]}]}');
-- 24. fractional number
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": 1.5, "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": "1", "TableColumns": [{"ColumnName": "a", "ColumnType": "INT4"}]}]}');
-- 25. TablePath starting with a slash
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": "1", "Tables": [{"TableName": "t", "TablePath": "/s/t/", "TableOwner": "s", "TableColumnsTotal": "1", "TableColumns": [{"ColumnName": "a", "ColumnType": "INT4"}]}]}');
-- 26. no columns
SELECT * FROM dms_stream.parse_external_table_definition('{"TableCount": "1", "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": "0", "TableColumns": []}]}');
-- 27. larger than the 2 MB DMS accepts
SELECT count(*) FROM dms_stream.parse_external_table_definition(
  '{"TableCount": "1", "Tables": [], "pad": "' || repeat('x', 2 * 1024 * 1024) || '"}');

-- Registering a definition on an S3 source endpoint normalises it.
SELECT dms_stream.create_endpoint('s3-src', 's3', 'source',
  jsonb_build_object('BucketName', 'dms-demo', 'CdcPath', 'changes',
    'ExternalTableDefinition', '{"TableCount": "1", "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": "1", "TableColumns": [{"ColumnName": "a", "ColumnType": "INT4"}]}]}'));
SELECT * FROM dms_stream.register_external_table_definition('s3-src', $${
  "TableCount": "2",
  "Tables": [
    {"TableName": "table01", "TablePath": "schema01/table01/", "TableOwner": "schema01", "TableColumnsTotal": "5",
     "TableColumns": [
       {"ColumnName": "ingest_time", "ColumnType": "DATETIME", "ColumnNullable": "false", "ColumnIsPk": "true"},
       {"ColumnName": "doi", "ColumnType": "STRING", "ColumnLength": "30"},
       {"ColumnName": "id", "ColumnType": "INT8"},
       {"ColumnName": "value", "ColumnType": "NUMERIC", "ColumnPrecision": "5", "ColumnScale": "2"},
       {"ColumnName": "data_sig", "ColumnType": "STRING", "ColumnLength": "10"}]},
    {"TableName": "employee", "TablePath": "hr/employee/", "TableOwner": "hr", "TableColumnsTotal": "1",
     "TableColumns": [{"ColumnName": "Id", "ColumnType": "INT8", "ColumnIsPk": "true"}]}]}$$);
SELECT table_owner, table_name, column_ordinal, column_name, column_type, column_length,
       column_precision, column_scale, column_nullable, column_is_pk
  FROM dms_stream.external_column ORDER BY table_owner DESC, table_name, column_ordinal;
-- 28. a bad definition is rejected and the old one stays
SELECT * FROM dms_stream.register_external_table_definition('s3-src', '{"TableCount": "1", "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": "1", "TableColumns": [{"ColumnName": "a", "ColumnType": "INT9"}]}]}');
SELECT count(*) FROM dms_stream.external_table;
-- 29. only S3 sources take a definition
SELECT dms_stream.create_endpoint('kin', 'kinesis', 'target', '{"StreamName": "s"}');
SELECT * FROM dms_stream.register_external_table_definition('kin', '{}');
-- 30. the same rules apply to a definition given directly in S3Settings
UPDATE dms_stream.endpoint SET settings = settings || '{"ExternalTableDefinition": {"TableCount": "1", "Tables": [{"TableName": "t", "TablePath": "s/t/", "TableOwner": "s", "TableColumnsTotal": "1", "TableColumns": [{"ColumnName": "a", "ColumnType": "STRING"}]}]}}' WHERE endpoint_name = 's3-src';
-- Dropping the endpoint removes its tables.
SELECT dms_stream.drop_endpoint('s3-src');
SELECT count(*) FROM dms_stream.external_column;
DROP EXTENSION dms_stream;
