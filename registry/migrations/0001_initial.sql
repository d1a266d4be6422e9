-- 0001: the first schema of custos.db.
--
-- Conventions: times are Unix seconds (UTC) in INTEGER columns, NULL when a time has not come
-- yet; certificate serials are BLOBs holding the positive serial's big-endian magnitude, no
-- leading zero bytes; hashes are raw 32-byte BLOBs. The large tables (devices, certificates,
-- keys, revocations) refer to issuers and devices by small integer numbers, which keeps their
-- rows and indexes compact at a million devices.
--
-- Nothing secret is stored here: no PINs, shares, quorum secret or key-encryption key.

-- Small key/value settings the GUI keeps, such as the PKCS#11 module path.
CREATE TABLE settings (
  key        TEXT    PRIMARY KEY,
  value      TEXT    NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Every ceremony and decommission run, so that runs that stopped half way are found on start.
CREATE TABLE runs (
  id           TEXT    PRIMARY KEY CHECK (id <> ''),
  kind         TEXT    NOT NULL CHECK (kind IN ('ceremony', 'decommission')),
  operation    TEXT    NOT NULL CHECK (operation <> ''),
  subject      TEXT    NOT NULL DEFAULT '',
  status       TEXT    NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'aborted')),
  journal_path TEXT    NOT NULL CHECK (journal_path <> ''),
  record_path  TEXT    NOT NULL DEFAULT '',
  note         TEXT    NOT NULL DEFAULT '',
  started_at   INTEGER NOT NULL,
  finished_at  INTEGER
);
CREATE INDEX runs_unfinished ON runs (started_at) WHERE status IN ('running', 'failed');

-- What a decommission run adds to its row in runs.
CREATE TABLE decommission_runs (
  run_id          TEXT PRIMARY KEY REFERENCES runs (id),
  manifest_path   TEXT NOT NULL DEFAULT '',
  manifest_sha256 BLOB,
  technician      TEXT NOT NULL CHECK (technician <> ''),
  witness         TEXT NOT NULL DEFAULT ''
);

-- Root and issuing CAs made by ceremonies, with where their keys live.
CREATE TABLE issuers (
  num             INTEGER PRIMARY KEY,
  id              TEXT    NOT NULL UNIQUE CHECK (id <> ''),
  kind            TEXT    NOT NULL CHECK (kind IN ('root', 'issuing')),
  common_name     TEXT    NOT NULL,
  serial          BLOB    NOT NULL,
  cert_der        BLOB    NOT NULL,
  cert_sha256     BLOB    NOT NULL UNIQUE,
  parent_num      INTEGER REFERENCES issuers (num),
  ceremony_id     TEXT    NOT NULL CHECK (ceremony_id <> ''),
  token_label     TEXT    NOT NULL CHECK (token_label <> ''),
  key_id          BLOB    NOT NULL,
  key_algorithm   TEXT    NOT NULL,
  status          TEXT    NOT NULL CHECK (status IN ('active', 'destroyed')),
  created_at      INTEGER NOT NULL,
  destroyed_at    INTEGER,
  -- The last CRL number handed out; numbers are allocated before signing and never reused.
  last_crl_number INTEGER NOT NULL DEFAULT 0 CHECK (last_crl_number >= 0),
  CHECK ((kind = 'root') = (parent_num IS NULL))
);
CREATE INDEX issuers_common_name ON issuers (common_name);
CREATE UNIQUE INDEX issuers_issued ON issuers (parent_num, serial) WHERE parent_num IS NOT NULL;

-- Certificates with a role that are not CAs: the record signer.
CREATE TABLE role_certs (
  num           INTEGER PRIMARY KEY,
  role          TEXT    NOT NULL CHECK (role IN ('record-signer')),
  issuer_num    INTEGER NOT NULL REFERENCES issuers (num),
  ceremony_id   TEXT    NOT NULL CHECK (ceremony_id <> ''),
  common_name   TEXT    NOT NULL,
  serial        BLOB    NOT NULL,
  cert_der      BLOB    NOT NULL,
  cert_sha256   BLOB    NOT NULL UNIQUE,
  token_label   TEXT    NOT NULL CHECK (token_label <> ''),
  key_id        BLOB    NOT NULL,
  key_algorithm TEXT    NOT NULL,
  status        TEXT    NOT NULL CHECK (status IN ('active', 'destroyed')),
  created_at    INTEGER NOT NULL,
  destroyed_at  INTEGER,
  UNIQUE (issuer_num, serial)
);
CREATE INDEX role_certs_ceremony ON role_certs (ceremony_id, role, status);

-- The public side of a root ceremony's quorum: parameters, commitments and digests only.
CREATE TABLE quorums (
  ceremony_id   TEXT    PRIMARY KEY CHECK (ceremony_id <> ''),
  module_path   TEXT    NOT NULL,
  ops_token     TEXT    NOT NULL,
  plan          BLOB    NOT NULL,
  plan_sha256   BLOB    NOT NULL,
  threshold     INTEGER NOT NULL CHECK (threshold >= 2),
  epoch         INTEGER NOT NULL CHECK (epoch >= 1),
  secret_digest BLOB    NOT NULL,
  backup_path   TEXT    NOT NULL DEFAULT '',
  backup_sha256 BLOB,
  status        TEXT    NOT NULL CHECK (status IN ('active', 'destroyed')),
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  destroyed_at  INTEGER
) WITHOUT ROWID;

-- One row per share of the current epoch: who holds it and its commitment.
CREATE TABLE quorum_shares (
  ceremony_id TEXT    NOT NULL REFERENCES quorums (ceremony_id),
  number      INTEGER NOT NULL CHECK (number BETWEEN 1 AND 255),
  position    INTEGER NOT NULL,
  custodian   TEXT    NOT NULL CHECK (custodian <> ''),
  commitment  BLOB    NOT NULL,
  PRIMARY KEY (ceremony_id, number),
  UNIQUE (ceremony_id, position)
) WITHOUT ROWID;

-- CRLs issued: one row per signed CRL.
CREATE TABLE crls (
  issuer_num  INTEGER NOT NULL REFERENCES issuers (num),
  number      INTEGER NOT NULL CHECK (number > 0),
  this_update INTEGER NOT NULL,
  next_update INTEGER NOT NULL CHECK (next_update > this_update),
  entries     INTEGER NOT NULL CHECK (entries >= 0),
  sha256      BLOB    NOT NULL,
  path        TEXT    NOT NULL,
  recorded_at INTEGER NOT NULL,
  PRIMARY KEY (issuer_num, number)
) WITHOUT ROWID;

CREATE TABLE devices (
  num               INTEGER PRIMARY KEY,
  serial            TEXT    NOT NULL UNIQUE CHECK (serial <> ''),
  model             TEXT    NOT NULL,
  owner             TEXT    NOT NULL DEFAULT '',
  site              TEXT    NOT NULL DEFAULT '',
  issuer_num        INTEGER NOT NULL REFERENCES issuers (num),
  status            TEXT    NOT NULL CHECK (status IN ('active', 'decommissioned')),
  registered_at     INTEGER NOT NULL,
  decommissioned_at INTEGER
);
-- Decommissioned devices, for listing them; active ones are listed from the serial index. A
-- partial index costs nothing when a device is registered and one entry when it is retired.
CREATE INDEX devices_decommissioned ON devices (serial) WHERE status = 'decommissioned';

-- Device certificates.
CREATE TABLE certificates (
  num        INTEGER PRIMARY KEY,
  issuer_num INTEGER NOT NULL REFERENCES issuers (num),
  serial     BLOB    NOT NULL,
  device_num INTEGER NOT NULL REFERENCES devices (num),
  subject    TEXT    NOT NULL,
  not_before INTEGER NOT NULL,
  not_after  INTEGER NOT NULL,
  der        BLOB    NOT NULL,
  sha256     BLOB    NOT NULL,
  UNIQUE (issuer_num, serial)
);
CREATE INDEX certificates_device ON certificates (device_num);
CREATE INDEX certificates_sha256 ON certificates (sha256);

-- Device keys. state, state_at, state_run_id and state_note are the key's current state; the
-- triggers below copy every state a key takes, from its first, into key_states, so the history
-- cannot be forgotten and device_keys.state is always its newest entry.
CREATE TABLE device_keys (
  num               INTEGER PRIMARY KEY,
  device_num        INTEGER NOT NULL REFERENCES devices (num),
  key_id            BLOB    NOT NULL,
  public_key_sha256 BLOB    NOT NULL,
  token_label       TEXT    NOT NULL DEFAULT '',
  certificate_num   INTEGER REFERENCES certificates (num),
  state             TEXT    NOT NULL CHECK (state IN ('pre-activation', 'active', 'deactivated', 'compromised', 'destroyed')),
  state_at          INTEGER NOT NULL,
  state_run_id      TEXT    REFERENCES runs (id),
  state_note        TEXT    NOT NULL DEFAULT '',
  UNIQUE (device_num, public_key_sha256)
);

-- Each key's NIST SP 800-57 state changes. Every allowed move goes to a later state of the
-- order pre-activation, active, deactivated, compromised, destroyed, so a key is in each state
-- at most once: (key, state) is the key, and the history is ordered by (at, that order).
CREATE TABLE key_states (
  key_num INTEGER NOT NULL REFERENCES device_keys (num),
  state   TEXT    NOT NULL CHECK (state IN ('pre-activation', 'active', 'deactivated', 'compromised', 'destroyed')),
  at      INTEGER NOT NULL,
  run_id  TEXT    REFERENCES runs (id),
  note    TEXT    NOT NULL DEFAULT '',
  PRIMARY KEY (key_num, state)
) WITHOUT ROWID;

CREATE TRIGGER device_keys_first_state AFTER INSERT ON device_keys BEGIN
  INSERT INTO key_states (key_num, state, at, run_id, note)
  VALUES (NEW.num, NEW.state, NEW.state_at, NEW.state_run_id, NEW.state_note);
END;

-- Only the moves SP 800-57 allows, never back in time; the Go code checks first and says why.
-- An active key that is destroyed is deactivated on the way: 'active>destroyed' is allowed in
-- one update, and the next trigger writes both steps into the history.
CREATE TRIGGER device_keys_check_state BEFORE UPDATE OF state ON device_keys
WHEN NEW.state IS NOT OLD.state AND (NEW.state_at < OLD.state_at OR OLD.state || '>' || NEW.state NOT IN (
  'pre-activation>active', 'pre-activation>compromised', 'pre-activation>destroyed',
  'active>deactivated', 'active>compromised', 'active>destroyed',
  'deactivated>compromised', 'deactivated>destroyed',
  'compromised>destroyed'))
BEGIN
  SELECT RAISE(ABORT, 'key state change not allowed by SP 800-57 or dated before the current state');
END;

CREATE TRIGGER device_keys_next_state AFTER UPDATE OF state ON device_keys WHEN NEW.state IS NOT OLD.state BEGIN
  INSERT INTO key_states (key_num, state, at, run_id, note)
  SELECT NEW.num, 'deactivated', NEW.state_at, NEW.state_run_id, NEW.state_note
  WHERE OLD.state = 'active' AND NEW.state = 'destroyed';
  INSERT INTO key_states (key_num, state, at, run_id, note)
  VALUES (NEW.num, NEW.state, NEW.state_at, NEW.state_run_id, NEW.state_note);
END;

-- Revoked certificates of every issuer, device or CA. WITHOUT ROWID and keyed by
-- (issuer, serial length, serial), the table is its own covering index, and its order is the
-- serials' numeric order (a shorter magnitude is a smaller number): the CRL encoder reads one
-- issuer's entries, sorted, as a single range of the b-tree.
CREATE TABLE revocations (
  issuer_num    INTEGER NOT NULL REFERENCES issuers (num),
  serial_len    INTEGER NOT NULL,
  serial        BLOB    NOT NULL,
  revoked_at    INTEGER NOT NULL,
  reason        INTEGER NOT NULL CHECK (reason IN (0, 1, 2, 3, 4, 5, 9, 10)),
  invalidity_at INTEGER,
  PRIMARY KEY (issuer_num, serial_len, serial),
  CHECK (serial_len = length(serial))
) WITHOUT ROWID;

-- What a decommission run did to each device.
CREATE TABLE decommission_results (
  run_id          TEXT    NOT NULL REFERENCES runs (id),
  device_num      INTEGER NOT NULL REFERENCES devices (num),
  issuer_num      INTEGER NOT NULL REFERENCES issuers (num),
  outcome         TEXT    NOT NULL CHECK (outcome IN ('decommissioned', 'already-decommissioned', 'failed')),
  method          TEXT    NOT NULL CHECK (method <> ''),
  verification    TEXT    NOT NULL DEFAULT '',
  reason          INTEGER,
  note            TEXT    NOT NULL DEFAULT '',
  key_state       TEXT,
  revoked_at      INTEGER,
  invalidity_at   INTEGER,
  revoked_serials TEXT    NOT NULL DEFAULT '',
  key_ids         TEXT    NOT NULL DEFAULT '',
  crl_number      INTEGER,
  record_path     TEXT    NOT NULL DEFAULT '',
  at              INTEGER NOT NULL,
  PRIMARY KEY (run_id, device_num)
) WITHOUT ROWID;
CREATE INDEX decommission_results_device ON decommission_results (device_num);
