DROP INDEX artifacts_by_content;
DROP TABLE artifact_chunks;
DROP TABLE artifact_blobs;
