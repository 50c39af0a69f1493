-- Artifact references: named pointers from a model to files stored
-- elsewhere (s3://, gs://, file://, https://...). `sha256` is 64 lower-case
-- hex digits, `created_at` the database clock (microseconds since the Unix
-- epoch). Keyed by model first, like epochs, so the table distributes with
-- them.
CREATE TABLE artifacts (
    model_id BIGINT NOT NULL REFERENCES models (id),
    name TEXT COLLATE "C" NOT NULL,
    uri TEXT NOT NULL,
    sha256 TEXT,
    size_bytes BIGINT,
    media_type TEXT,
    created_at BIGINT NOT NULL,
    -- NULL for now: the bytes live only at `uri`. A later issue lets mlmeta
    -- store the bytes itself, content-addressed; this column will then hold
    -- the SHA-256 (lower-case hex) of the stored content, the key of its
    -- blob, so that a reference can point at content mlmeta keeps.
    content_sha256 TEXT,
    PRIMARY KEY (model_id, name)
);
