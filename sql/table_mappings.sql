-- Table mappings: DMS's documented examples are accepted; mistakes are
-- rejected with the path of the offending rule field.
\set SHOW_CONTEXT never
CREATE EXTENSION dms_stream;

-- Selection with include/exclude and source filters (DMS guide examples).
SELECT dms_stream.check_table_mappings($${"rules": [
  {"rule-type": "selection", "rule-id": "1", "rule-name": "1",
   "object-locator": {"schema-name": "Test", "table-name": "%"}, "rule-action": "include"},
  {"rule-type": "selection", "rule-id": "2", "rule-name": "2",
   "object-locator": {"schema-name": "Test", "table-name": "DMS%"}, "rule-action": "exclude"},
  {"rule-type": "selection", "rule-id": "3", "rule-name": "3", "rule-action": "include",
   "object-locator": {"schema-name": "test", "table-name": "employee"},
   "filters": [{"filter-type": "source", "column-name": "empid", "filter-conditions": [
      {"filter-operator": "lte", "value": "10"},
      {"filter-operator": "between", "start-value": "50", "end-value": "75"},
      {"filter-operator": "gte", "value": "100"}]}]}
]}$$);

-- Transformations, table settings and the Kinesis object-mapping example.
SELECT dms_stream.check_table_mappings($${"rules": [
  {"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include",
   "object-locator": {"schema-name": "Test", "table-name": "%"}},
  {"rule-type": "transformation", "rule-id": "2", "rule-name": "2", "rule-action": "rename",
   "rule-target": "schema", "object-locator": {"schema-name": "Test"}, "value": "Test1"},
  {"rule-type": "transformation", "rule-id": "3", "rule-name": "3", "rule-action": "replace-prefix",
   "rule-target": "column", "object-locator": {"schema-name": "%", "table-name": "%", "column-name": "%"},
   "value": "NewPre_", "old-value": "Pre_"},
  {"rule-type": "transformation", "rule-id": "4", "rule-name": "4", "rule-action": "remove-column",
   "rule-target": "column", "object-locator": {"schema-name": "Test", "table-name": "ITEM", "column-name": "col%"}},
  {"rule-type": "transformation", "rule-id": "5", "rule-name": "5", "rule-action": "convert-lowercase",
   "rule-target": "table", "object-locator": {"schema-name": "Test", "table-name": "[_]X%"}},
  {"rule-type": "table-settings", "rule-id": "6", "rule-name": "6",
   "object-locator": {"schema-name": "HR", "table-name": "SALES"},
   "parallel-load": {"type": "ranges", "columns": ["SALES_NO", "REGION"],
                     "boundaries": [["1000", "NORTH"], ["3000", "WEST"]]}},
  {"rule-type": "object-mapping", "rule-id": "7", "rule-name": "TransformToKinesis",
   "rule-action": "map-record-to-record", "target-table-name": "CustomerData",
   "object-locator": {"schema-name": "Test", "table-name": "Customers"},
   "mapping-parameters": {
     "partition-key-type": "attribute-name", "partition-key-name": "CustomerName",
     "exclude-columns": ["firstname", "lastname", "homeaddress", "homephone", "workaddress", "workphone"],
     "attribute-mappings": [
       {"target-attribute-name": "CustomerName", "attribute-type": "scalar", "attribute-sub-type": "string",
        "value": "${lastname}, ${firstname}"},
       {"target-attribute-name": "ContactDetails", "attribute-type": "document", "attribute-sub-type": "json",
        "value": {"Home": {"Address": "${homeaddress}", "Phone": "${homephone}"},
                  "Work": {"Address": "${workaddress}", "Phone": "${workphone}"}}}]}},
  {"rule-type": "object-mapping", "rule-id": "8", "rule-name": "8", "rule-action": "map-record-to-document",
   "object-locator": {"schema-name": "Test", "table-name": "Orders"},
   "mapping-parameters": {"partition-key-type": "constant", "partition-key": {"value": "ConstantPartitionKey"}}}
]}$$);

-- Malformed mappings.
-- 1. no rules
SELECT dms_stream.check_table_mappings('{"rules": []}');
-- 2. unknown top-level key
SELECT dms_stream.check_table_mappings('{"Rules": []}');
-- 3. unknown rule type
SELECT dms_stream.check_table_mappings('{"rules": [{"rule-type": "selecton", "rule-id": "1", "rule-name": "1"}]}');
-- 4. unknown selection action
SELECT dms_stream.check_table_mappings('{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "includ", "object-locator": {"schema-name": "s", "table-name": "t"}}]}');
-- 5. rule-id not a number
SELECT dms_stream.check_table_mappings('{"rules": [{"rule-type": "selection", "rule-id": "one", "rule-name": "1", "rule-action": "include", "object-locator": {"schema-name": "s", "table-name": "t"}}]}');
-- 6. duplicate rule-id
SELECT dms_stream.check_table_mappings('{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "a", "rule-action": "include", "object-locator": {"schema-name": "s", "table-name": "t"}}, {"rule-type": "selection", "rule-id": "1", "rule-name": "b", "rule-action": "include", "object-locator": {"schema-name": "s", "table-name": "u"}}]}');
-- 7. object-locator missing
SELECT dms_stream.check_table_mappings('{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include"}]}');
-- 8. only exclude rules
SELECT dms_stream.check_table_mappings('{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "exclude", "object-locator": {"schema-name": "s", "table-name": "t"}}]}');
-- 9. explicit with a wildcard
SELECT dms_stream.check_table_mappings('{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "explicit", "object-locator": {"schema-name": "s", "table-name": "t%"}}]}');
-- 10. filter with a missing value
SELECT dms_stream.check_table_mappings('{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include", "object-locator": {"schema-name": "s", "table-name": "t"}, "filters": [{"filter-type": "source", "column-name": "c", "filter-conditions": [{"filter-operator": "between", "start-value": "1"}]}]}]}');
-- 11. negative operator combined with another condition
SELECT dms_stream.check_table_mappings('{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include", "object-locator": {"schema-name": "s", "table-name": "t"}, "filters": [{"filter-type": "source", "column-name": "c", "filter-conditions": [{"filter-operator": "noteq", "value": "1"}, {"filter-operator": "eq", "value": "2"}]}]}]}');
-- 12. unknown filter operator
SELECT dms_stream.check_table_mappings('{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include", "object-locator": {"schema-name": "s", "table-name": "t"}, "filters": [{"filter-type": "source", "column-name": "c", "filter-conditions": [{"filter-operator": "lt", "value": "1"}]}]}]}');
-- 13. transformation action DMS has but dms_stream does not carry out
SELECT dms_stream.check_table_mappings('{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include", "object-locator": {"schema-name": "s", "table-name": "%"}}, {"rule-type": "transformation", "rule-id": "2", "rule-name": "2", "rule-action": "add-column", "rule-target": "column", "object-locator": {"schema-name": "s", "table-name": "t"}, "value": "x"}]}');
-- 14. unknown transformation action
SELECT dms_stream.check_table_mappings('{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include", "object-locator": {"schema-name": "s", "table-name": "%"}}, {"rule-type": "transformation", "rule-id": "2", "rule-name": "2", "rule-action": "rename-table", "rule-target": "table", "object-locator": {"schema-name": "s", "table-name": "t"}, "value": "x"}]}');
-- 15. replace-prefix without old-value
SELECT dms_stream.check_table_mappings('{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include", "object-locator": {"schema-name": "s", "table-name": "%"}}, {"rule-type": "transformation", "rule-id": "2", "rule-name": "2", "rule-action": "replace-prefix", "rule-target": "table", "object-locator": {"schema-name": "s", "table-name": "%"}, "value": "new_"}]}');
-- 16. column target without column-name
SELECT dms_stream.check_table_mappings('{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include", "object-locator": {"schema-name": "s", "table-name": "%"}}, {"rule-type": "transformation", "rule-id": "2", "rule-name": "2", "rule-action": "convert-uppercase", "rule-target": "column", "object-locator": {"schema-name": "s", "table-name": "t"}}]}');
-- 17. table-settings with a wildcard (DMS's own message)
SELECT dms_stream.check_table_mappings('{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include", "object-locator": {"schema-name": "s", "table-name": "%"}}, {"rule-type": "table-settings", "rule-id": "2", "rule-name": "2", "object-locator": {"schema-name": "s", "table-name": "%"}, "parallel-load": {"type": "ranges", "columns": ["a"], "boundaries": [["1"]]}}]}');
-- 18. range boundary with the wrong number of values
SELECT dms_stream.check_table_mappings('{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include", "object-locator": {"schema-name": "s", "table-name": "%"}}, {"rule-type": "table-settings", "rule-id": "2", "rule-name": "2", "object-locator": {"schema-name": "s", "table-name": "t"}, "parallel-load": {"type": "ranges", "columns": ["a", "b"], "boundaries": [["1", "x"], ["2"]]}}]}');
-- 19. unknown object-mapping action
SELECT dms_stream.check_table_mappings('{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include", "object-locator": {"schema-name": "s", "table-name": "%"}}, {"rule-type": "object-mapping", "rule-id": "2", "rule-name": "2", "rule-action": "map-record-to-json", "object-locator": {"schema-name": "s", "table-name": "t"}}]}');
-- 20. attribute-name partition key without its name
SELECT dms_stream.check_table_mappings('{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include", "object-locator": {"schema-name": "s", "table-name": "%"}}, {"rule-type": "object-mapping", "rule-id": "2", "rule-name": "2", "rule-action": "map-record-to-record", "object-locator": {"schema-name": "s", "table-name": "t"}, "mapping-parameters": {"partition-key-type": "attribute-name"}}]}');
-- 21. unterminated ${ template
SELECT dms_stream.check_table_mappings('{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include", "object-locator": {"schema-name": "s", "table-name": "%"}}, {"rule-type": "object-mapping", "rule-id": "2", "rule-name": "2", "rule-action": "map-record-to-record", "object-locator": {"schema-name": "s", "table-name": "t"}, "mapping-parameters": {"attribute-mappings": [{"target-attribute-name": "n", "attribute-type": "scalar", "value": "${lastname, ${firstname}"}]}}]}');
-- 22. DynamoDB-only parameter
SELECT dms_stream.check_table_mappings('{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include", "object-locator": {"schema-name": "s", "table-name": "%"}}, {"rule-type": "object-mapping", "rule-id": "2", "rule-name": "2", "rule-action": "map-record-to-record", "object-locator": {"schema-name": "s", "table-name": "t"}, "mapping-parameters": {"sort-key-name": "k"}}]}');
-- 23. unterminated character set in a name pattern
SELECT dms_stream.check_table_mappings('{"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1", "rule-action": "include", "object-locator": {"schema-name": "s", "table-name": "t[ab"}}]}');
DROP EXTENSION dms_stream;
