DROP TABLE metric_summaries;
DROP TABLE epochs;
DROP TABLE models;
DROP TABLE components;
