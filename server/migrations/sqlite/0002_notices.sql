-- Notices for the operators (see server/src/notify): written in the same transaction as
-- the state change that caused them, delivered from here. `body` is the notice as JSON.
CREATE TABLE notices (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    severity   TEXT NOT NULL,
    region     TEXT,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- 0 until the dispatcher has made its deliveries (one per matching channel).
    routed     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX notices_unrouted ON notices (created_at) WHERE routed = 0;
