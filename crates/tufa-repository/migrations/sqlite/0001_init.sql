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
    bin            INTEGER NOT NULL,
    info           TEXT,
    published_info TEXT,
    change_seq     INTEGER NOT NULL,
    published_seq  INTEGER NOT NULL DEFAULT 0,
    staged         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX artifacts_by_bin ON artifacts (bin);
CREATE INDEX artifacts_pending ON artifacts (change_seq) WHERE change_seq > published_seq;

-- The change sequence: one number per accepted request.
CREATE TABLE sequence (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last INTEGER NOT NULL
);
INSERT INTO sequence (id, last) VALUES (1, 0);

-- Published role versions and expiry (seconds since the epoch).
CREATE TABLE roles (
    name    TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    expires INTEGER NOT NULL
);

-- Tasks, kept for good (RSTUF keeps them 24 hours in Redis).
CREATE TABLE tasks (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    state      TEXT NOT NULL,
    seq        INTEGER,
    status     INTEGER,
    message    TEXT,
    error      TEXT,
    details    TEXT,
    created    INTEGER NOT NULL,
    updated    INTEGER NOT NULL
);
CREATE INDEX tasks_pending ON tasks (seq) WHERE state = 'PENDING';
CREATE INDEX tasks_by_created ON tasks (created);
