-- The DMS guide's table-mapping examples, pasted as the guide prints them
-- (quoted in the project's DMS reference, sections 3.1-3.4); a single rule is
-- given with a selection rule in front. Each is accepted, or refused with a
-- clear error where dms_stream does not carry the action out.
\set SHOW_CONTEXT never
CREATE EXTENSION dms_stream;

-- selection with a source filter
SELECT dms_stream.check_table_mappings($doc${
    "rules": [
        {
            "rule-type": "selection",
            "rule-id": "1",
            "rule-name": "1",
            "object-locator": {
                "schema-name": "Test",
                "table-name": "%"
            },
            "rule-action": "include"
        },
        {
            "rule-type": "selection",
            "rule-id": "2",
            "rule-name": "2",
            "object-locator": {
                "schema-name": "Test",
                "table-name": "DMS%"
            },
            "rule-action": "exclude"
        }
    ]
}$doc$);
-- selection by pattern
SELECT dms_stream.check_table_mappings($doc${
    "rules": [{
        "rule-type": "selection",
        "rule-id": "1",
        "rule-name": "1",
        "object-locator": {
            "schema-name": "test",
            "table-name": "employee"
        },
        "rule-action": "include",
        "filters": [{
            "filter-type": "source",
            "column-name": "empid",
            "filter-conditions": [{
                "filter-operator": "lte",
                "value": "10"
            }, {
                "filter-operator": "between",
                "start-value": "50",
                "end-value": "75"
            }, {
                "filter-operator": "gte",
                "value": "100"
            }]
        }]
    }]
}$doc$);
-- rename transformation
SELECT dms_stream.check_table_mappings($doc${"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "object-locator": {"schema-name": "%", "table-name": "%"}, "rule-action": "include"},
{
            "rule-type": "transformation",
            "rule-id": "2",
            "rule-name": "2",
            "rule-action": "rename",
            "rule-target": "schema",
            "object-locator": {
                "schema-name": "Test"
            },
            "value": "Test1"
}]}$doc$);
-- replace-prefix transformation
SELECT dms_stream.check_table_mappings($doc${"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "object-locator": {"schema-name": "%", "table-name": "%"}, "rule-action": "include"},
{
            "rule-type": "transformation",
            "rule-id": "2",
            "rule-name": "2",
            "rule-action": "replace-prefix",
            "rule-target": "column",
            "object-locator": {
                "schema-name": "%",
                "table-name": "%",
                "column-name": "%"
            },
            "value": "NewPre_",
            "old-value": "Pre_"
}]}$doc$);
-- add-column with an expression (not carried out: refused)
SELECT dms_stream.check_table_mappings($doc${"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "object-locator": {"schema-name": "%", "table-name": "%"}, "rule-action": "include"},
{
            "rule-type": "transformation",
            "rule-id": "2",
            "rule-name": "2",
            "rule-action": "add-column",
            "rule-target": "column",
            "object-locator": {
                "schema-name": "Test",
                "table-name": "ITEM"
            },
            "value": "FULL_NAME",
            "expression": "$FIRST_NAME||'_'||$LAST_NAME",
            "data-type": {
                 "type": "string",
                 "length": 50
            }
}]}$doc$);
-- Kinesis object mapping with attribute mappings
SELECT dms_stream.check_table_mappings($doc${
    "rules": [
        {
            "rule-type": "selection",
            "rule-id": "1",
            "rule-name": "1",
            "rule-action": "include",
            "object-locator": {
                "schema-name": "Test",
                "table-name": "%"
            }
        },
        {
            "rule-type": "object-mapping",
            "rule-id": "2",
            "rule-name": "TransformToKinesis",
            "rule-action": "map-record-to-record",
            "target-table-name": "CustomerData",
            "object-locator": {
                "schema-name": "Test",
                "table-name": "Customers"
            },
            "mapping-parameters": {
                "partition-key-type": "attribute-name",
                "partition-key-name": "CustomerName",
                "exclude-columns": [
                    "firstname",
                    "lastname",
                    "homeaddress",
                    "homephone",
                    "workaddress",
                    "workphone"
                ],
                "attribute-mappings": [
                    {
                        "target-attribute-name": "CustomerName",
                        "attribute-type": "scalar",
                        "attribute-sub-type": "string",
                        "value": "${lastname}, ${firstname}"
                    },
                    {
                        "target-attribute-name": "ContactDetails",
                        "attribute-type": "document",
                        "attribute-sub-type": "json",
                        "value": {
                            "Home": {
                                "Address": "${homeaddress}",
                                "Phone": "${homephone}"
                            },
                            "Work": {
                                "Address": "${workaddress}",
                                "Phone": "${workphone}"
                            }
                        }
                    }
                ]
            }
        }
    ]
}$doc$);
-- table-settings parallel load
SELECT dms_stream.check_table_mappings($doc${"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "object-locator": {"schema-name": "%", "table-name": "%"}, "rule-action": "include"},
{
            "rule-type": "table-settings",
            "rule-id": "2",
            "rule-name": "2",
            "object-locator": {
                "schema-name": "HR",
                "table-name": "SALES"
            },
            "parallel-load": {
                "type": "ranges",
                "columns": [
                    "SALES_NO",
                    "REGION"
                ],
                "boundaries": [
                    [
                        "1000",
                        "NORTH"
                    ],
                    [
                        "3000",
                        "WEST"
                    ]
                ]
            }
}]}$doc$);

-- The seed blog's external table definition as the page prints it (typographic
-- quotes, braces lost by the page): the error says what to fix.
SELECT dms_stream.check_endpoint_settings('s3', 'source', jsonb_build_object('BucketName', 'blog-bucket', 'ExternalTableDefinition', $doc$“TableCount”: “1",
    	“Tables”: [{
    		“TableName”: “table01”,
    		“TablePath”: “schema01/table01/“,
    		“TableOwner”: “schema01",
    		“TableColumns”: [{
    			“ColumnName”: “ingest_time”,
    			“ColumnType”: “TIMESTAMP”,
    			“ColumnNullable”: “false”,
    			“ColumnIsPk”: “true”
    		}, {
    			“ColumnName”: “doi”,
    			“ColumnType”: “STRING”,
    			“ColumnLength”: “30”
    		}, {
    			“ColumnName”: “id”,
    			“ColumnType”: “INT8”
    		}, {
    			“ColumnName”: “value”,
    			“ColumnType”: “NUMERIC”,
    			“ColumnPrecision”: “5”,
    			“ColumnScale”: “2”
    		}, {
    			“ColumnName”: “data_sig”,
    			“ColumnType”: “STRING”,
    			“ColumnLength”: “10”
    		“TableColumnsTotal”: “5”$doc$::text));
-- The same definition with straight quotes and its braces: accepted, TIMESTAMP as DATETIME.
SELECT table_name, column_name, column_type FROM dms_stream.parse_external_table_definition($doc${
 "TableCount": "1",
 "Tables": [
  {
   "TableName": "table01",
   "TablePath": "schema01/table01/",
   "TableOwner": "schema01",
   "TableColumns": [
    {
     "ColumnName": "ingest_time",
     "ColumnType": "TIMESTAMP",
     "ColumnNullable": "false",
     "ColumnIsPk": "true"
    },
    {
     "ColumnName": "doi",
     "ColumnType": "STRING",
     "ColumnLength": "30"
    },
    {
     "ColumnName": "id",
     "ColumnType": "INT8"
    },
    {
     "ColumnName": "value",
     "ColumnType": "NUMERIC",
     "ColumnPrecision": "5",
     "ColumnScale": "2"
    },
    {
     "ColumnName": "data_sig",
     "ColumnType": "STRING",
     "ColumnLength": "10"
    }
   ],
   "TableColumnsTotal": "5"
  }
 ]
}$doc$);

DROP EXTENSION dms_stream;
