-- A removed path kept its row in `artifacts` (info NULL) for ever. Since
-- this version a publication that signs a removal deletes the row; this
-- deletes those that earlier versions left: removals already published,
-- with nothing pending or staged for their path.
DELETE FROM artifacts WHERE info IS NULL AND staged = 0 AND change_seq <= published_seq;
