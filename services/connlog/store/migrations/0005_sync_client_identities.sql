-- Vendor sync: who each client a source follows is. A Meraki client has an
-- id and a MAC, and a source may name it either way (or both): the worker
-- asks Meraki once which (id, MAC) a name stands for, keeps the answer here,
-- and follows each distinct client once, under both.

CREATE TABLE sync_client_identities (
    source_id        text NOT NULL REFERENCES sync_sources (source_id) ON DELETE CASCADE,
    client           text NOT NULL,               -- the name as the source lists it
    vendor_client_id text NOT NULL DEFAULT '',    -- Meraki's client id ('' if it has none)
    mac_address      text NOT NULL DEFAULT '',    -- aa:bb:cc:dd:ee:ff ('' if unknown)
    resolved_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_id, client)
);
