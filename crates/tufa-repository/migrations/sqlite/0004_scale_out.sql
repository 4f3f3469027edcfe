-- Insertion order of tasks, named the same in both engines (PostgreSQL has
-- no rowid): "newest first" lists break ties in `created` by it.
ALTER TABLE tasks ADD COLUMN ord INTEGER;
UPDATE tasks SET ord = rowid;
CREATE TRIGGER tasks_ord AFTER INSERT ON tasks
BEGIN
    UPDATE tasks SET ord = NEW.rowid WHERE rowid = NEW.rowid;
END;
CREATE INDEX tasks_by_ord ON tasks (ord);

-- The publisher lease: whoever takes the publisher lock raises `epoch`; a
-- publication records its results only while its epoch is still current, so
-- a worker that lost the lock without noticing cannot record anything.
CREATE TABLE publisher (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    epoch  INTEGER NOT NULL,
    holder TEXT NOT NULL,
    since  INTEGER NOT NULL
);
INSERT INTO publisher (id, epoch, holder, since) VALUES (1, 0, '', 0);
