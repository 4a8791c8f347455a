-- Delivery of notices (see server/src/notify): one row per notice and channel, made in
-- the transaction that marks the notice routed. Plain types and no SQLite-only
-- functions, so the PostgreSQL flavour is the same text.

-- The problem a notice is about (`alert-42`, `incident-7`, `monitoring-<since>`), set
-- when it is routed: a resolution goes to the channels that heard of the problem, and
-- Alertmanager gets the same labels for every notice of one problem.
ALTER TABLE notices ADD COLUMN problem TEXT;
CREATE INDEX notices_problem ON notices (problem);

CREATE TABLE deliveries (
    notice     TEXT NOT NULL REFERENCES notices (id),
    channel    TEXT NOT NULL,
    -- pending: to be sent at next_at; sending: an attempt is under way (a crash leaves
    -- it so, and the next start sends it again: at least once); sent; failed: given up
    -- (last_error says why); summarized: carried by the summary notice `summary`.
    state      TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    next_at    TEXT NOT NULL,
    give_up_at TEXT NOT NULL,
    sent_at    TEXT,
    last_error TEXT,
    summary    TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (notice, channel)
);
CREATE INDEX deliveries_due ON deliveries (channel, state, next_at);
CREATE INDEX deliveries_sent ON deliveries (channel, sent_at);
CREATE INDEX deliveries_summary ON deliveries (summary);
