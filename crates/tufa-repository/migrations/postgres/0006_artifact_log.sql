-- Accepted artifact changes, in the order they were accepted, until they
-- are moved into `artifacts` (see migrations/sqlite/0006_artifact_log.sql). Writers take
-- the `sequence` row lock first, so `id` follows the commit order.
CREATE TABLE artifact_log (
    id   BIGSERIAL PRIMARY KEY,
    seq  BIGINT NOT NULL,
    path TEXT NOT NULL,
    bin  BIGINT NOT NULL,
    info TEXT
);

-- The highest change number published: logged changes up to it are signed
-- by the live metadata and wait only to be moved into `artifacts`, which
-- the publisher does right after recording a publication (so its tasks
-- succeed without waiting for that).
ALTER TABLE sequence ADD COLUMN published BIGINT NOT NULL DEFAULT 0;
