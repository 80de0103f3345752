-- The client directory (connlog.store.directory, docs/insights.md "The
-- client directory"): per network, every client its stored events name,
-- with its first and last occurrence and its event and failure counts, for
-- listing and searching clients (QueryService.ListClients) without scanning
-- events. Kept by the rollup fold (connlog.store.rollups.FOLD), in the same
-- statement and under the same watermark as the rollups: it holds exactly
-- the events below the watermark, each once (duplicates are never stored).
--
-- A client is its MAC address, else its client id (as the insights group
-- clients, and as ListClientSessions' `networks/*/clients/{client}` reads
-- it): `client_key` is the MAC's text (`aa:bb:cc:dd:ee:ff`) or the id, the
-- `{client}` of the client's resource name.
CREATE TABLE client_directory (
    tenant_ref    integer NOT NULL,
    network_ref   integer NOT NULL,
    client_key    text NOT NULL,
    -- the MAC address; NULL for a client known by its id alone
    client_mac    macaddr,
    -- the client id of the latest event that has one, and that event's time
    client_id     text,
    client_id_at  timestamptz,
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    events        bigint NOT NULL,
    failures      bigint NOT NULL,
    -- the MAC's 12 hex digits, for prefix search ("aabb" finds aa:bb:..)
    mac_digits    text COLLATE "C" GENERATED ALWAYS AS (replace(client_mac::text, ':', '')) STORED,
    PRIMARY KEY (tenant_ref, network_ref, client_key)
);
-- A network's clients, most recently seen first (the listing and its keyset
-- pages; a network's latest event time is its first entry).
CREATE INDEX client_directory_recent ON client_directory (tenant_ref, network_ref, last_seen_at DESC, client_key DESC);
-- Prefix search: MAC digits, and the client id case-insensitively.
CREATE INDEX client_directory_mac ON client_directory (tenant_ref, network_ref, mac_digits text_pattern_ops)
    WHERE client_mac IS NOT NULL;
CREATE INDEX client_directory_id ON client_directory (tenant_ref, network_ref, lower(client_id) text_pattern_ops)
    WHERE client_id IS NOT NULL;

-- The directory's counts per UTC day of occurrence: what retention takes
-- away from the directory when it drops a day (connlog.store.rollups.forget),
-- so that the counts and first-seen times stay exact. A client's directory
-- row is the sum of its day rows (events, failures) and their min / max.
CREATE TABLE client_directory_days (
    tenant_ref  integer NOT NULL,
    network_ref integer NOT NULL,
    client_key  text NOT NULL,
    day         timestamptz NOT NULL,
    events      bigint NOT NULL,
    failures    bigint NOT NULL,
    first_at    timestamptz NOT NULL,
    last_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_ref, network_ref, client_key, day)
);

-- A fold of a version before this one knows no directory: it names the
-- hourly rollups' key by its old name, so it now fails (logged and retried
-- by its maintainer) instead of advancing the watermark past events the
-- directory would lack. Its ACCESS EXCLUSIVE lock also waits for a fold in
-- progress and holds the next one off until this migration commits, so the
-- backfill below reads exactly the events below the watermark.
ALTER TABLE connection_rollups RENAME CONSTRAINT connection_rollups_hour_key TO connection_rollups_hourly_key;

-- The days of the events below the watermark (the ones the rollups hold).
INSERT INTO client_directory_days (tenant_ref, network_ref, client_key, day, events, failures, first_at, last_at)
SELECT e.tenant_ref, e.network_ref, coalesce(e.client_mac::text, e.client_id),
       date_bin('1 day', e.occurred_at, '2000-01-01 00:00:00+00'), count(*), count(*) FILTER (WHERE e.outcome = 2),
       min(e.occurred_at), max(e.occurred_at)
FROM connection_events e
WHERE (e.stored_xid IS NULL OR e.stored_xid < (SELECT w.xid FROM connection_rollup_watermark w))
  AND (e.client_mac IS NOT NULL OR e.client_id IS NOT NULL)
GROUP BY e.tenant_ref, e.network_ref, coalesce(e.client_mac::text, e.client_id),
         date_bin('1 day', e.occurred_at, '2000-01-01 00:00:00+00');

-- The clients of those events.
INSERT INTO client_directory (tenant_ref, network_ref, client_key, client_mac, client_id, client_id_at, first_seen_at,
                              last_seen_at, events, failures)
SELECT e.tenant_ref, e.network_ref, coalesce(e.client_mac::text, e.client_id),
       (array_agg(e.client_mac) FILTER (WHERE e.client_mac IS NOT NULL))[1],
       (array_agg(e.client_id ORDER BY e.occurred_at DESC, e.id DESC) FILTER (WHERE e.client_id IS NOT NULL))[1],
       max(e.occurred_at) FILTER (WHERE e.client_id IS NOT NULL),
       min(e.occurred_at), max(e.occurred_at), count(*), count(*) FILTER (WHERE e.outcome = 2)
FROM connection_events e
WHERE (e.stored_xid IS NULL OR e.stored_xid < (SELECT w.xid FROM connection_rollup_watermark w))
  AND (e.client_mac IS NOT NULL OR e.client_id IS NOT NULL)
GROUP BY e.tenant_ref, e.network_ref, coalesce(e.client_mac::text, e.client_id);
