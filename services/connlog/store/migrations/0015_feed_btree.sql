-- The commit feed's index: a B-tree on (stored_xid, id), replacing the
-- block-range index of 0008.
--
-- Every reader of the feed (the live tail's follower after each wake-up,
-- the rollup fold, a summary's raw read past the watermark) asks for the few
-- newest events after a position. A BRIN index can only skip block ranges
-- it has summarized, and a day's partition being written has its recent
-- ranges unsummarized until autovacuum gets to them (with no statistics
-- either): the planner then scanned the whole day's partition for each read,
-- over and over during a load (docs/performance.md). A B-tree finds them
-- whatever the summarization, in the feed's own order.
CREATE INDEX connection_events_feed ON connection_events (stored_xid, id);
DROP INDEX connection_events_stored_xid;
