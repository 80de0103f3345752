-- Mojo-style login sessions and the access points seen in events.

-- A session cookie stands for the API key that logged in; only the SHA-256 of
-- the session id is stored.
CREATE TABLE sessions (
    session_hash      bytea PRIMARY KEY,
    key_id            text NOT NULL REFERENCES api_keys (key_id) ON DELETE CASCADE,
    client_identifier text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- Access points by serial, kept up to date by the ingest service (Meraki's
-- inventory look-ups read this instead of scanning events).
CREATE TABLE access_points (
    tenant_ref   integer NOT NULL REFERENCES tenants (tenant_ref) ON DELETE CASCADE,
    serial       text NOT NULL,
    network_ref  integer NOT NULL REFERENCES networks (network_ref) ON DELETE CASCADE,
    name         text NOT NULL DEFAULT '',
    last_seen_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_ref, serial)
);
