DROP TABLE json_values_pending;
DROP INDEX json_values_by_path;
DROP TABLE json_values;
