-- The record log: an append-only Merkle tree (RFC 6962 hashing) of every run that ended in a
-- record, with the checkpoints signed over it. Its leaves are journaled facts, so the log can be
-- rebuilt from the journals.

-- One row per leaf, in order: idx is the leaf's index, leaf the exact bytes hashed.
CREATE TABLE record_log (
    idx            INTEGER PRIMARY KEY CHECK (idx >= 0),
    run_id         TEXT    NOT NULL UNIQUE,
    kind           TEXT    NOT NULL,
    journal_sha256 TEXT    NOT NULL,
    leaf           BLOB    NOT NULL,
    logged_at      INTEGER NOT NULL
);

-- The tree's stored hashes (golang.org/x/mod/sumdb/tlog's numbering): every complete subtree's
-- hash, written once when the leaf that completes it is added.
CREATE TABLE record_log_hashes (
    idx  INTEGER PRIMARY KEY CHECK (idx >= 0),
    hash BLOB    NOT NULL CHECK (length(hash) = 32)
);

-- Signed checkpoints (C2SP tlog-checkpoint in a signed note), as signed: by the record signer
-- after each run, co-signed by the root at each quorum operation.
CREATE TABLE record_log_checkpoints (
    id          INTEGER PRIMARY KEY,
    size        INTEGER NOT NULL CHECK (size > 0),
    root_hash   BLOB    NOT NULL CHECK (length(root_hash) = 32),
    note        TEXT    NOT NULL UNIQUE,
    run_id      TEXT    NOT NULL,
    root_signed INTEGER NOT NULL CHECK (root_signed IN (0, 1)),
    signed_at   INTEGER NOT NULL
);
CREATE INDEX record_log_checkpoints_root ON record_log_checkpoints (root_signed, size);
