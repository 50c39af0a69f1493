DROP TABLE json_values_pending;
DROP TABLE json_values;
