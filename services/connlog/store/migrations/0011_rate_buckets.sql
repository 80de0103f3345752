-- Shared rate budgets (connlog.store.budgets): one token bucket per scope and
-- key, held here so that every replica of every service draws on the same
-- one (the Meraki per-organisation limit, the per-key write budgets). A take
-- is one statement: it refills the bucket by the time elapsed since
-- updated_at (the database's clock, never a replica's), then takes tokens or
-- takes none and leaves the wait to be computed from what is there.
--
-- UNLOGGED: never written to the WAL (a take is a write on every limited
-- request), not replicated, and emptied by crash recovery: after a crash of
-- the database server every bucket starts full again (a fresh budget, as a
-- key that has not been used for a while gets). A clean restart keeps them.
--
-- scope:      what the bucket limits ('meraki_organization', 'key_writes',
--             'device_writes')
-- key:        whose bucket (an organisation; a key and tenant)
-- tokens:     what was left at updated_at (negative: a request costing more
--             than the whole burst put the bucket into debt)
-- taken:      what the last take took (0: it was refused); read back by the
--             taking statement itself
-- updated_at: when tokens was computed (database clock, never moves back)
-- full_at:    when the bucket is full again if nobody takes: a row past it
--             is the same as no row, and is swept
CREATE UNLOGGED TABLE rate_buckets (
    scope      text             NOT NULL,
    key        text             NOT NULL,
    tokens     double precision NOT NULL,
    taken      double precision NOT NULL,
    updated_at timestamptz      NOT NULL,
    full_at    timestamptz      NOT NULL,
    PRIMARY KEY (scope, key)
) WITH (fillfactor = 70);  -- room for HOT updates: no indexed column changes on a take
