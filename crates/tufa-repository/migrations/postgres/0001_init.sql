-- The same schema as migrations/sqlite, in PostgreSQL's types.

-- Settings: small JSON documents by key (repository settings, bootstrap state).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row per target path ever registered. `info` is the wanted state (NULL:
-- removed), `published_info` what the live metadata signs. A change is
-- pending while change_seq > published_seq.
CREATE TABLE artifacts (
    path           TEXT PRIMARY KEY,
    bin            BIGINT NOT NULL,
    info           TEXT,
    published_info TEXT,
    change_seq     BIGINT NOT NULL,
    published_seq  BIGINT NOT NULL DEFAULT 0,
    staged         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX artifacts_by_bin ON artifacts (bin);
CREATE INDEX artifacts_pending ON artifacts (change_seq) WHERE change_seq > published_seq;

-- The change sequence: one number per accepted request. Its row lock
-- orders concurrent writers: a change's number is visible only once committed.
CREATE TABLE sequence (
    id   BIGINT PRIMARY KEY CHECK (id = 1),
    last BIGINT NOT NULL
);
INSERT INTO sequence (id, last) VALUES (1, 0);

-- Published role versions and expiry (seconds since the epoch).
CREATE TABLE roles (
    name    TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    expires BIGINT NOT NULL
);

-- Tasks, kept for good (RSTUF keeps them 24 hours in Redis).
CREATE TABLE tasks (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    state      TEXT NOT NULL,
    seq        BIGINT,
    status     BIGINT,
    message    TEXT,
    error      TEXT,
    details    TEXT,
    created    BIGINT NOT NULL,
    updated    BIGINT NOT NULL
);
CREATE INDEX tasks_pending ON tasks (seq) WHERE state = 'PENDING';
CREATE INDEX tasks_by_created ON tasks (created);
