-- The quorum statements each root signed (package quorum's Statement): its canonical text and
-- the root key's signature, one row per statement, numbered from 1. Every quorum operation
-- checks the registry's quorum against the newest before it trusts any of it, so a row here
-- is evidence, not configuration: editing it breaks the root's signature.
CREATE TABLE quorum_statements (
  ceremony_id TEXT    NOT NULL REFERENCES quorums (ceremony_id),
  seq         INTEGER NOT NULL CHECK (seq >= 1),
  statement   BLOB    NOT NULL CHECK (length(statement) > 0),
  signature   BLOB    NOT NULL CHECK (length(signature) > 0),
  run_id      TEXT    NOT NULL CHECK (run_id <> ''),
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (ceremony_id, seq)
) WITHOUT ROWID;

-- Where each share went ("token:LABEL", "age:RECIPIENT", "dir:PATH", "file PATH", "screen"),
-- so that a share read back from a custodian's token finds its custodian, and a screen names it.
ALTER TABLE quorum_shares ADD COLUMN destination TEXT NOT NULL DEFAULT '';
