-- The commit feed: every stored event in the order its transaction made it
-- final, read gaplessly by the live tail and the rollups (connlog.store.feed).
--
-- stored_xid is the inserting transaction's id. Every transaction with an id
-- below the current snapshot's xmin has ended, and every transaction yet to
-- write gets a larger id, so the events with stored_xid below that horizon,
-- in (stored_xid, id) order, are final: no row can later appear before the
-- horizon. (An id can be read only once its transaction has ended, a
-- sequence number could be taken by a transaction that commits later.)
--
-- Adding the column with no default is instant; the default then applies to
-- new rows only (events stored before this migration are not in the feed).
ALTER TABLE connection_events ADD COLUMN stored_xid bigint;
ALTER TABLE connection_events ALTER COLUMN stored_xid SET DEFAULT (pg_current_xact_id()::text::bigint);

-- Rows are appended in roughly transaction order, so a block-range index is
-- enough to find the feed's recent end (a few pages, not a B-tree per row).
CREATE INDEX connection_events_stored_xid ON connection_events USING brin (stored_xid) WITH (autosummarize = on);

-- Readers are woken by a NOTIFY on connlog_events that the ingest service
-- sends after its commits (connlog.store.feed.FeedNotifier), not by a
-- trigger: PostgreSQL serialises the commits of all transactions that
-- notify, which would halve the concurrent commit rate of ingest.
