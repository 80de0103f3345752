-- Vendor sync by several replicas: sources are shared out by leases held in
-- the database (connlog.store.sync). A replica claims due sources whose lease
-- is free or lapsed (FOR UPDATE SKIP LOCKED: two replicas never claim one
-- source), renews its leases while it polls, and releases each when its poll
-- is done. A replica that dies leaves its leases to lapse: another claims
-- them within the lease time. Every time here is the database's clock.
--
-- lease_holder:    the replica polling the source now (host:pid:random), or NULL
-- lease_until:     when that lease lapses unless renewed
-- next_poll_at:    when the source is due (set on release: the poll's start
--                  plus the source's interval); new sources are due at once
-- poll_started_at: when the last poll was claimed
ALTER TABLE sync_sources
    ADD COLUMN lease_holder    text,
    ADD COLUMN lease_until     timestamptz,
    ADD COLUMN next_poll_at    timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN poll_started_at timestamptz;
ALTER TABLE sync_sources
    ADD CONSTRAINT sync_sources_lease_whole CHECK ((lease_holder IS NULL) = (lease_until IS NULL));

CREATE INDEX sync_sources_due ON sync_sources (next_poll_at) WHERE enabled;
