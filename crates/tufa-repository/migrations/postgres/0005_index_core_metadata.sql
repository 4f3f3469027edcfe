-- PEP 658 / 714 core metadata: the METADATA file of an uploaded wheel,
-- stored content-addressed beside the files and signed as the target
-- packages/{project}/{filename}.metadata. NULL when the upload carried none.
ALTER TABLE index_files ADD COLUMN metadata_size BIGINT;
ALTER TABLE index_files ADD COLUMN metadata_sha256 TEXT;
ALTER TABLE index_files ADD COLUMN metadata_blake2b_256 TEXT;
