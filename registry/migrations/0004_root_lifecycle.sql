-- 0004: the whole life of a root: what each CA and role certificate may still sign, the tokens
-- that hold a root, and the root's backup blobs and the copies people made of them.

-- state is what a CA or role certificate may still sign: active (what its kind signs), revoked
-- (nothing; state_reason is the CRL's reason code), retired (an issuing CA signs only CRLs, a
-- record signer nothing), destroyed (its key is gone). state_run_id is the run that set it.
-- status stays what it was: whether the key exists.
ALTER TABLE issuers ADD COLUMN state TEXT NOT NULL DEFAULT 'active'
  CHECK (state IN ('active', 'revoked', 'retired', 'destroyed'));
ALTER TABLE issuers ADD COLUMN state_at INTEGER;
ALTER TABLE issuers ADD COLUMN state_reason INTEGER CHECK (state_reason IS NULL OR state_reason IN (0, 1, 2, 3, 4, 5, 9, 10));
ALTER TABLE issuers ADD COLUMN state_run_id TEXT REFERENCES runs (id);
ALTER TABLE role_certs ADD COLUMN state TEXT NOT NULL DEFAULT 'active'
  CHECK (state IN ('active', 'revoked', 'retired', 'destroyed'));
ALTER TABLE role_certs ADD COLUMN state_at INTEGER;
ALTER TABLE role_certs ADD COLUMN state_reason INTEGER CHECK (state_reason IS NULL OR state_reason IN (0, 1, 2, 3, 4, 5, 9, 10));
ALTER TABLE role_certs ADD COLUMN state_run_id TEXT REFERENCES runs (id);

UPDATE issuers SET state = 'destroyed', state_at = destroyed_at WHERE status = 'destroyed';
UPDATE role_certs SET state = 'destroyed', state_at = destroyed_at WHERE status = 'destroyed';
-- What the parent already revoked is revoked.
UPDATE issuers SET state = 'revoked',
  state_at = (SELECT r.revoked_at FROM revocations r WHERE r.issuer_num = issuers.parent_num
    AND r.serial_len = length(issuers.serial) AND r.serial = issuers.serial),
  state_reason = (SELECT r.reason FROM revocations r WHERE r.issuer_num = issuers.parent_num
    AND r.serial_len = length(issuers.serial) AND r.serial = issuers.serial)
WHERE state = 'active' AND parent_num IS NOT NULL AND EXISTS (SELECT 1 FROM revocations r
  WHERE r.issuer_num = issuers.parent_num AND r.serial_len = length(issuers.serial) AND r.serial = issuers.serial);
UPDATE role_certs SET state = 'revoked',
  state_at = (SELECT r.revoked_at FROM revocations r WHERE r.issuer_num = role_certs.issuer_num
    AND r.serial_len = length(role_certs.serial) AND r.serial = role_certs.serial),
  state_reason = (SELECT r.reason FROM revocations r WHERE r.issuer_num = role_certs.issuer_num
    AND r.serial_len = length(role_certs.serial) AND r.serial = role_certs.serial)
WHERE state = 'active' AND EXISTS (SELECT 1 FROM revocations r
  WHERE r.issuer_num = role_certs.issuer_num AND r.serial_len = length(role_certs.serial) AND r.serial = role_certs.serial);

-- Every token that holds a root's key: the ceremony's and each one a restore made. pin_epoch
-- is the quorum epoch whose secret its PINs derive from (0: not known). A holder is holding,
-- lost (recorded by a reshare that went on without it, state_note saying why) or destroyed.
CREATE TABLE root_holders (
  num           INTEGER PRIMARY KEY,
  issuer_num    INTEGER NOT NULL REFERENCES issuers (num),
  token_label   TEXT    NOT NULL CHECK (token_label <> ''),
  token_serial  TEXT    NOT NULL DEFAULT '',
  token_model   TEXT    NOT NULL DEFAULT '',
  key_id        BLOB    NOT NULL,
  origin        TEXT    NOT NULL CHECK (origin IN ('ceremony', 'restore')),
  origin_run_id TEXT    REFERENCES runs (id),
  pin_epoch     INTEGER NOT NULL CHECK (pin_epoch >= 0),
  state         TEXT    NOT NULL CHECK (state IN ('holding', 'lost', 'destroyed')),
  state_at      INTEGER NOT NULL,
  state_run_id  TEXT    REFERENCES runs (id),
  state_note    TEXT    NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX root_holders_holding ON root_holders (issuer_num, token_label) WHERE state = 'holding';

-- For a root that was restored before this schema, its ceremony's token, whose PINs no reshare
-- changed; then the token the registry has the root's key on, at the quorum's epoch.
INSERT INTO root_holders (issuer_num, token_label, key_id, origin, pin_epoch, state, state_at)
  SELECT i.num, i.ceremony_id, i.key_id, 'ceremony', 0, 'holding', i.created_at
  FROM issuers i WHERE i.kind = 'root' AND i.token_label <> i.ceremony_id AND i.status = 'active';
INSERT INTO root_holders (issuer_num, token_label, key_id, origin, pin_epoch, state, state_at)
  SELECT i.num, i.token_label, i.key_id, CASE WHEN i.token_label = i.ceremony_id THEN 'ceremony' ELSE 'restore' END,
    q.epoch, CASE i.status WHEN 'destroyed' THEN 'destroyed' ELSE 'holding' END, coalesce(i.destroyed_at, q.updated_at)
  FROM issuers i JOIN quorums q ON q.ceremony_id = i.ceremony_id WHERE i.kind = 'root';

-- A root's wrapped backup, one blob per epoch, written under backup/ in the workspace.
-- destroyed_at is when Custos overwrote and removed it there.
CREATE TABLE backup_blobs (
  num              INTEGER PRIMARY KEY,
  ceremony_id      TEXT    NOT NULL REFERENCES quorums (ceremony_id),
  epoch            INTEGER NOT NULL CHECK (epoch >= 1),
  sha256           BLOB    NOT NULL CHECK (length(sha256) = 32),
  path             TEXT    NOT NULL CHECK (path <> ''),
  run_id           TEXT    REFERENCES runs (id),
  created_at       INTEGER NOT NULL,
  destroyed_at     INTEGER,
  destroyed_run_id TEXT    REFERENCES runs (id),
  UNIQUE (ceremony_id, epoch)
);
CREATE INDEX backup_blobs_sha256 ON backup_blobs (sha256);
INSERT INTO backup_blobs (ceremony_id, epoch, sha256, path, created_at)
  SELECT ceremony_id, epoch, backup_sha256, backup_path, updated_at FROM quorums WHERE backup_path <> '';

-- Copies of a blob that people carried out of the workspace (removable media), numbered per
-- root. Custos cannot reach them: a person destroys each and says so (retired_*).
CREATE TABLE backup_copies (
  ceremony_id     TEXT    NOT NULL REFERENCES quorums (ceremony_id),
  copy            INTEGER NOT NULL CHECK (copy >= 1),
  blob_num        INTEGER NOT NULL REFERENCES backup_blobs (num),
  location        TEXT    NOT NULL CHECK (location <> ''),
  media           TEXT    NOT NULL DEFAULT '',
  made_by         TEXT    NOT NULL CHECK (made_by <> ''),
  made_at         INTEGER NOT NULL,
  run_id          TEXT    NOT NULL REFERENCES runs (id),
  retired_at      INTEGER,
  retired_by      TEXT    NOT NULL DEFAULT '',
  retired_witness TEXT    NOT NULL DEFAULT '',
  retired_run_id  TEXT    REFERENCES runs (id),
  PRIMARY KEY (ceremony_id, copy),
  CHECK ((retired_at IS NULL) = (retired_run_id IS NULL))
) WITHOUT ROWID;
