-- Artifact content: the bytes of uploaded artifacts, stored once per
-- SHA-256 (content-addressed) in chunks. A blob is written while its
-- upload streams in, with `sha256` NULL (invisible: nothing refers to it);
-- the upload's last transaction sets `sha256` (or, when that content is
-- already stored, drops the new copy) and points the artifact at it
-- through `artifacts.content_sha256`. The sweeper removes blobs of broken
-- uploads and blobs no artifact refers to any more; `referenced_at` (the
-- last time an upload pointed an artifact at the blob) keeps it from
-- removing a blob an upload is pointing at right then.
CREATE TABLE artifact_blobs (
    id BIGSERIAL PRIMARY KEY,
    sha256 TEXT COLLATE "C",
    size_bytes BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    referenced_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX artifact_blobs_by_sha256 ON artifact_blobs (sha256) WHERE sha256 IS NOT NULL;

CREATE TABLE artifact_chunks (
    blob_id BIGINT NOT NULL REFERENCES artifact_blobs (id),
    seq BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (blob_id, seq)
);

CREATE INDEX artifacts_by_content ON artifacts (content_sha256) WHERE content_sha256 IS NOT NULL;
