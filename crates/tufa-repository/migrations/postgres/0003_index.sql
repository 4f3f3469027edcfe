-- The bundled package index (PEP 503/691 pages, files, twine uploads).

-- Upload users: only the SHA-256 of each API token is kept.
CREATE TABLE index_users (
    name         TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    created      BIGINT NOT NULL
);

-- Projects by PEP 503 normalised name; the first uploader owns the name.
CREATE TABLE index_projects (
    name    TEXT PRIMARY KEY,
    owner   TEXT NOT NULL REFERENCES index_users (name),
    created BIGINT NOT NULL
);

-- Distribution files. A filename is unique for ever across the index.
CREATE TABLE index_files (
    filename        TEXT PRIMARY KEY,
    project         TEXT NOT NULL REFERENCES index_projects (name),
    version         TEXT NOT NULL,
    size            BIGINT NOT NULL,
    sha256          TEXT NOT NULL,
    blake2b_256     TEXT NOT NULL,
    requires_python TEXT,
    yanked          TEXT,
    upload_time     BIGINT NOT NULL,
    uploader        TEXT NOT NULL,
    -- Deleted files keep their row: a filename is never reused.
    deleted         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX index_files_by_project ON index_files (project);

-- Every version of every generated page, by the SHA-256 of its bytes.
CREATE TABLE index_pages (
    sha256 TEXT PRIMARY KEY,
    body   BYTEA NOT NULL
);
