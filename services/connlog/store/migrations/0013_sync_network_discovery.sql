-- Vendor sync of whole networks (connlog.vendorsync.schedule): a Meraki
-- source may follow every client of its network, as Meraki's network clients
-- listing reports them, besides (or instead of) the clients it lists.
--
-- sync_sources:
--   discover_clients    follow the network's clients as discovered (implied
--                       when the source lists none)
--   discovered_at       when the network's clients were last listed
--   last_sweep_at       when the last full sweep (poll of the source) ended
--   last_sweep_seconds  how long it took
--   last_sweep_clients  clients it polled
--   last_sweep_requests vendor requests it made (the listing included)
--
-- sync_discovered_clients: the clients the listing reported, each under its
-- MAC (else its id) as its name, with both identifiers (a client listed by
-- id and discovered by MAC is one client, followed once) and Meraki's
-- lastSeen, which tiers how often it is polled. Rows not reported for 31
-- days (Meraki keeps no events older) are dropped at the next listing.
ALTER TABLE sync_sources
    ADD COLUMN discover_clients    boolean NOT NULL DEFAULT false,
    ADD COLUMN discovered_at       timestamptz,
    ADD COLUMN last_sweep_at       timestamptz,
    ADD COLUMN last_sweep_seconds  double precision,
    ADD COLUMN last_sweep_clients  integer NOT NULL DEFAULT 0,
    ADD COLUMN last_sweep_requests integer NOT NULL DEFAULT 0;

CREATE TABLE sync_discovered_clients (
    tenant_ref       integer NOT NULL REFERENCES tenants (tenant_ref) ON DELETE CASCADE,
    source_id        text NOT NULL REFERENCES sync_sources (source_id) ON DELETE CASCADE,
    client           text NOT NULL,              -- its name: aa:bb:cc:dd:ee:ff, else Meraki's id
    vendor_client_id text NOT NULL DEFAULT '',
    mac_address      text NOT NULL DEFAULT '',
    last_seen        timestamptz,                -- Meraki's lastSeen (NULL: not reported)
    reported_at      timestamptz NOT NULL DEFAULT now(),  -- the last listing that reported it
    PRIMARY KEY (source_id, client)
);
CREATE INDEX sync_discovered_clients_tenant ON sync_discovered_clients (tenant_ref);
