-- Accepted artifact changes, in the order they were accepted, until they
-- are moved into `artifacts`. Accepting appends here (a few sequential
-- pages per request) instead of updating `artifacts`, whose path and bin
-- indexes are in random order: a 1,000-artifact request wrote about 1,200
-- pages of those indexes. Once a publication that signed them is recorded,
-- they are moved into `artifacts` in one pass. Writes that go to
-- `artifacts` directly (staged changes, publishing staged changes,
-- `tufa import`) first move every logged change there, so a change in the
-- log is always newer than its path's row in `artifacts`.
-- AUTOINCREMENT: an id is never used twice, even after the log is emptied,
-- so "changes after id N" stays true for a reader that read up to N.
CREATE TABLE artifact_log (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    seq  INTEGER NOT NULL,
    path TEXT NOT NULL,
    bin  INTEGER NOT NULL,
    info TEXT
);

-- The highest change number published: logged changes up to it are signed
-- by the live metadata and wait only to be moved into `artifacts`, which
-- the publisher does right after recording a publication (so its tasks
-- succeed without waiting for that).
ALTER TABLE sequence ADD COLUMN published INTEGER NOT NULL DEFAULT 0;
