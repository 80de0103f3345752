-- Connection rollups: the counts behind the connection summary, per network,
-- hour and bounded dimension, kept up to date from the commit feed (0008) by
-- the rollup maintainer (connlog.store.rollups, connlog.query.rollups).
--
-- One row per (network, UTC hour of occurrence, access point serial, access
-- point name of an event without a serial, SSID, band, step, outcome,
-- failure code): how many events, the first and last occurrence and the id
-- of the most recent event (whose payload names the failure reason). The
-- client is not a dimension (it would multiply the rows by the clients):
-- client-filtered and client-grouped summaries read raw events.
CREATE TABLE connection_rollups (
    tenant_ref   integer NOT NULL,
    network_ref  integer NOT NULL,
    hour         timestamptz NOT NULL,
    ap_serial    text,
    ap_name      text,
    ssid         text,
    band         smallint NOT NULL,
    step         smallint NOT NULL,
    outcome      smallint NOT NULL,
    failure_code integer,
    events       bigint NOT NULL,
    first_at     timestamptz NOT NULL,
    last_at      timestamptz NOT NULL,
    last_id      bigint NOT NULL,
    CONSTRAINT connection_rollups_key UNIQUE NULLS NOT DISTINCT
        (tenant_ref, network_ref, hour, ap_serial, ap_name, ssid, band, step, outcome, failure_code)
);

-- The watermark: every event with stored_xid below xid (and every event
-- stored before 0008, without one) is counted in connection_rollups, and no
-- other. The maintainer folds the next feed range into the rollups and
-- advances it in one transaction; a summary reads it with the rollups in one
-- snapshot and reads raw only the events from it on.
CREATE TABLE connection_rollup_watermark (
    only_row     boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    xid          bigint NOT NULL,
    caught_up_at timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- The events stored so far, rolled up now (in this statement's snapshot: its
-- xmin is below every transaction still writing, so every event below it is
-- final and counted here; the maintainer folds the rest).
WITH horizon AS (
    SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xid
), backfill AS (
    INSERT INTO connection_rollups (tenant_ref, network_ref, hour, ap_serial, ap_name, ssid, band, step, outcome,
                                    failure_code, events, first_at, last_at, last_id)
    SELECT e.tenant_ref, e.network_ref, e.hour, e.ap_serial, e.ap_name, e.ssid, e.band, e.step, e.outcome,
           e.failure_code, sum(e.events)::bigint, min(e.first_at), max(e.last_at),
           (array_agg(e.last_id ORDER BY e.last_at DESC, e.last_id DESC))[1]
    FROM (
        SELECT e.tenant_ref, e.network_ref, date_bin('1 hour', e.occurred_at, '2000-01-01 00:00:00+00') AS hour,
               e.ap_serial, CASE WHEN e.ap_serial IS NULL THEN e.ap_name END AS ap_name, e.ssid, e.band, e.step,
               e.outcome, e.failure_code, 1::bigint AS events, e.occurred_at AS first_at,
               e.occurred_at AS last_at, e.id AS last_id
        FROM connection_events e
        WHERE e.stored_xid IS NULL OR e.stored_xid < (SELECT xid FROM horizon)
    ) e
    GROUP BY e.tenant_ref, e.network_ref, e.hour, e.ap_serial, e.ap_name, e.ssid, e.band, e.step, e.outcome,
             e.failure_code
)
INSERT INTO connection_rollup_watermark (xid, caught_up_at, updated_at)
SELECT xid, now(), now() FROM horizon;
