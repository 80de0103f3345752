-- Smaller connection_events indexes (see docs/benchmarks.md, storage).
--
-- The de-duplication key now leads with the time after the tenant, so that
-- (a) events arriving in time order append to it instead of landing on
-- random pages (fuller pages), and (b) it also serves tenant-wide listings in
-- time order (the planner adds an incremental sort on id), which makes the
-- separate (tenant_ref, occurred_at, id) index redundant.
ALTER TABLE connection_events
    ADD CONSTRAINT connection_events_dedup UNIQUE (tenant_ref, occurred_at, dedup_key);
ALTER TABLE connection_events
    DROP CONSTRAINT connection_events_tenant_ref_dedup_key_occurred_at_key;
DROP INDEX connection_events_tenant;
