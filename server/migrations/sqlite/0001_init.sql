-- campuswatch store, SQLite flavour. Times are RFC 3339 UTC text with milliseconds,
-- so text order is time order.

CREATE TABLE registry (
    campus           TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    region           TEXT NOT NULL,
    school_type      TEXT NOT NULL,
    expected_alarms  INTEGER NOT NULL,
    expected_cameras INTEGER NOT NULL,
    updated_at       TEXT NOT NULL
);

-- One row per campus that ever reported; `record` is the full gateway record (JSON).
CREATE TABLE gateways (
    campus     TEXT PRIMARY KEY,
    region     TEXT NOT NULL,
    state      TEXT NOT NULL,
    epoch      INTEGER NOT NULL,
    record     TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE devices (
    campus TEXT NOT NULL,
    device TEXT NOT NULL,
    position INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    state  TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (campus, device)
);

-- Transition history: device events from agents (event_id set, de-duplicated) and
-- gateway transitions judged by the server (event_id NULL).
CREATE TABLE transitions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    campus       TEXT NOT NULL,
    region       TEXT NOT NULL,
    device       TEXT,
    kind         TEXT NOT NULL,
    from_state   TEXT NOT NULL,
    to_state     TEXT NOT NULL,
    at           TEXT NOT NULL,
    cause        TEXT,
    event_id     INTEGER,
    measurements TEXT,
    received_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX transitions_event ON transitions (campus, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX transitions_at ON transitions (at);
CREATE INDEX transitions_campus_at ON transitions (campus, at);

CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY,
    campus      TEXT NOT NULL,
    region      TEXT NOT NULL,
    device      TEXT,
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL,
    since       TEXT NOT NULL,
    cause       TEXT,
    resolved_at TEXT,
    updated_at  TEXT NOT NULL
);
CREATE INDEX alerts_state ON alerts (state);
CREATE INDEX alerts_since ON alerts (since);
