-- Daily connection rollups: the rows of connection_rollups (0009) per UTC
-- day instead of per hour, so that a summary of whole days reads ~24 times
-- fewer rows (connlog.store.rollups, docs/insights.md "How summaries stay
-- fast"). `day` holds the day's start (UTC midnight, binned like the hours
-- from 2000-01-01 00:00 UTC); every other column means what it means in
-- connection_rollups. The fold keeps both levels in one statement, under the
-- one watermark: both hold exactly the events below it.
CREATE TABLE connection_rollups_daily (
    tenant_ref   integer NOT NULL,
    network_ref  integer NOT NULL,
    day          timestamptz NOT NULL,
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
    CONSTRAINT connection_rollups_day_key UNIQUE NULLS NOT DISTINCT
        (tenant_ref, network_ref, day, ap_serial, ap_name, ssid, band, step, outcome, failure_code)
);

-- A fold of a version before this one knows no daily rollups: it names the
-- hourly key by its old name, so it now fails (logged and retried by its
-- maintainer) instead of counting hours the days would lack. Its ACCESS
-- EXCLUSIVE lock also waits for a fold in progress and holds the next one
-- off until this migration commits, so the backfill below reads the hourly
-- rows exactly as of the watermark.
ALTER TABLE connection_rollups RENAME CONSTRAINT connection_rollups_key TO connection_rollups_hour_key;

-- The days of the hourly rollups (exact: the hourly rows are exactly the
-- events below the watermark; units aggregated as the fold aggregates them).
INSERT INTO connection_rollups_daily (tenant_ref, network_ref, day, ap_serial, ap_name, ssid, band, step, outcome,
                                      failure_code, events, first_at, last_at, last_id)
SELECT e.tenant_ref, e.network_ref, date_bin('1 day', e.hour, '2000-01-01 00:00:00+00'), e.ap_serial, e.ap_name,
       e.ssid, e.band, e.step, e.outcome, e.failure_code, sum(e.events)::bigint, min(e.first_at), max(e.last_at),
       (array_agg(e.last_id ORDER BY e.last_at DESC, e.last_id DESC))[1]
FROM connection_rollups e
GROUP BY e.tenant_ref, e.network_ref, date_bin('1 day', e.hour, '2000-01-01 00:00:00+00'), e.ap_serial, e.ap_name,
         e.ssid, e.band, e.step, e.outcome, e.failure_code;
