-- 0003: devices that live ten years.
--
-- An issuing CA may split its device CRL into shards published under a base URL: each device
-- certificate it issues names its own shard, BASE/<issuer id>/<shard>.crl, so the base URL and
-- the count are fixed when the CA is made and never change. '' and 0 for a CA without shards
-- (a root, or an issuing CA that publishes only its full CRL).
ALTER TABLE issuers ADD COLUMN crl_base_url TEXT NOT NULL DEFAULT '';
ALTER TABLE issuers ADD COLUMN crl_shards INTEGER NOT NULL DEFAULT 0 CHECK (crl_shards BETWEEN 0 AND 65536);

-- `custos device find --key-sha256` looks a key up by its fingerprint alone, across devices.
CREATE INDEX device_keys_public_key ON device_keys (public_key_sha256);
