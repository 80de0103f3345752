-- Vendor sync: sources and their per-client checkpoints.

CREATE TABLE sync_sources (
    source_id            text PRIMARY KEY,
    tenant_ref           integer NOT NULL REFERENCES tenants (tenant_ref) ON DELETE CASCADE,
    display_name         text NOT NULL DEFAULT '',
    vendor               smallint NOT NULL,
    base_url             text NOT NULL,
    credential           text NOT NULL DEFAULT '',
    network_id           text NOT NULL,
    vendor_network_id    text NOT NULL DEFAULT '',
    clients              text[] NOT NULL,
    poll_interval_s      double precision NOT NULL DEFAULT 60,
    rate_limit_per_s     double precision NOT NULL DEFAULT 0,
    organization_id      text NOT NULL DEFAULT '',
    client_identifier    text NOT NULL DEFAULT '',
    enabled              boolean NOT NULL DEFAULT true,
    -- the API key the sync service ingests this source's events with
    ingest_key_id        text NOT NULL REFERENCES api_keys (key_id),
    ingest_token         text NOT NULL,
    state                smallint NOT NULL DEFAULT 1,
    last_error           text NOT NULL DEFAULT '',
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_sources_tenant ON sync_sources (tenant_ref);

CREATE TABLE sync_checkpoints (
    source_id       text NOT NULL REFERENCES sync_sources (source_id) ON DELETE CASCADE,
    client          text NOT NULL,
    checkpoint_at   timestamptz,
    last_success_at timestamptz,
    fetched         bigint NOT NULL DEFAULT 0,
    ingested        bigint NOT NULL DEFAULT 0,
    duplicate       bigint NOT NULL DEFAULT 0,
    rejected        bigint NOT NULL DEFAULT 0,
    malformed       bigint NOT NULL DEFAULT 0,
    last_error      text NOT NULL DEFAULT '',
    PRIMARY KEY (source_id, client)
);
