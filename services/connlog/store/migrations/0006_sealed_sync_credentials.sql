-- Vendor credentials sealed at rest; vendor-sync ingests with its own service
-- identity instead of a per-source API key.
--
-- credential_sealed: the credential sealed by the application (AES-256-GCM,
-- connlog.core.sealing), bound to its source; NULL: none. The database never
-- sees a sealing key, so this migration cannot seal what is already stored:
-- the old plaintext column is kept as credential_plaintext until the
-- application seals it (vendor-sync at start, `connlog secrets rotate`) and
-- clears it, in one statement per row. Nothing writes to it any more.
ALTER TABLE sync_sources RENAME COLUMN credential TO credential_plaintext;
ALTER TABLE sync_sources ADD COLUMN credential_sealed bytea;
ALTER TABLE sync_sources
    ADD CONSTRAINT sync_sources_credential_once CHECK (credential_plaintext = '' OR credential_sealed IS NULL);

-- The per-source ingest keys were usable API keys stored in clear: revoke
-- them, then forget them.
UPDATE api_keys SET revoked_at = now()
 WHERE key_id IN (SELECT ingest_key_id FROM sync_sources) AND revoked_at IS NULL;
ALTER TABLE sync_sources DROP COLUMN ingest_token;
ALTER TABLE sync_sources DROP COLUMN ingest_key_id;
