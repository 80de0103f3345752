-- connlog schema, version 1: tenants, networks, API keys and connection events.

CREATE TABLE tenants (
    tenant_ref  integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   text NOT NULL UNIQUE,
    name        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE networks (
    network_ref integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_ref  integer NOT NULL REFERENCES tenants (tenant_ref) ON DELETE CASCADE,
    network_id  text NOT NULL,
    name        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_ref, network_id)
);

-- API keys: the secret is stored only as its SHA-256 (secrets are 256 random
-- bits, so a fast hash is enough); key_id is the public, non-secret part.
CREATE TABLE api_keys (
    key_id      text PRIMARY KEY,
    tenant_ref  integer NOT NULL REFERENCES tenants (tenant_ref) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('viewer', 'operator', 'administrator', 'super_user', 'device')),
    device_id   text,
    secret_hash bytea NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CHECK ((role = 'device') = (device_id IS NOT NULL))
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_ref);

CREATE SEQUENCE connection_events_id_seq AS bigint;

-- One row per stored event, partitioned by day of occurrence. Filterable
-- facts are columns; the whole normalised event (with the untouched vendor
-- record) is the protobuf in payload.
CREATE TABLE connection_events (
    id           bigint NOT NULL DEFAULT nextval('connection_events_id_seq'),
    tenant_ref   integer NOT NULL,
    network_ref  integer NOT NULL,
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    dedup_key    bytea NOT NULL,
    step         smallint NOT NULL,
    outcome      smallint NOT NULL,
    severity     smallint NOT NULL,
    band         smallint NOT NULL,
    vendor       smallint NOT NULL,
    client_mac   macaddr,
    client_id    text,
    ssid         text,
    ssid_number  smallint,
    ap_serial    text,
    ap_name      text,
    bssid        macaddr,
    failure_code integer,
    payload      bytea NOT NULL,
    PRIMARY KEY (id, occurred_at),
    -- The same event, from any path, is stored once.
    UNIQUE (tenant_ref, dedup_key, occurred_at)
) PARTITION BY RANGE (occurred_at);
ALTER SEQUENCE connection_events_id_seq OWNED BY connection_events.id;

-- Per-client timelines (Meraki by client id or MAC, Mojo by MAC tenant-wide).
CREATE INDEX connection_events_client_mac ON connection_events (tenant_ref, client_mac, occurred_at, id)
    WHERE client_mac IS NOT NULL;
CREATE INDEX connection_events_client_id ON connection_events (tenant_ref, client_id, occurred_at, id)
    WHERE client_id IS NOT NULL;
-- Per-network and tenant-wide scans.
CREATE INDEX connection_events_network ON connection_events (network_ref, occurred_at, id);
CREATE INDEX connection_events_tenant ON connection_events (tenant_ref, occurred_at, id);
