-- Insertion order of tasks ("newest first" lists break ties in `created`).
ALTER TABLE tasks ADD COLUMN ord BIGSERIAL;
CREATE INDEX tasks_by_ord ON tasks (ord);

-- The publisher lease: whoever takes the publisher lock raises `epoch`; a
-- publication records its results only while its epoch is still current, so
-- a worker that lost the lock without noticing cannot record anything.
CREATE TABLE publisher (
    id     BIGINT PRIMARY KEY CHECK (id = 1),
    epoch  BIGINT NOT NULL,
    holder TEXT NOT NULL,
    since  BIGINT NOT NULL
);
INSERT INTO publisher (id, epoch, holder, since) VALUES (1, 0, '', 0);
