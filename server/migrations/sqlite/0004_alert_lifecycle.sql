-- The alert lifecycle: severity, hold-down, acknowledgement, flapping, whether the
-- operators were told, and regional incidents.
ALTER TABLE alerts ADD COLUMN severity TEXT NOT NULL DEFAULT 'warning';
ALTER TABLE alerts ADD COLUMN opened_at TEXT;
ALTER TABLE alerts ADD COLUMN acked_by TEXT;
ALTER TABLE alerts ADD COLUMN acked_at TEXT;
ALTER TABLE alerts ADD COLUMN ack_comment TEXT;
ALTER TABLE alerts ADD COLUMN flapping INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN notified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN incident INTEGER;
CREATE INDEX alerts_campus ON alerts (campus);

-- Many gateways of one county that dropped together; `campuses` and `open_alerts` are
-- JSON arrays.
CREATE TABLE incidents (
    id          INTEGER PRIMARY KEY,
    region      TEXT NOT NULL,
    state       TEXT NOT NULL,
    since       TEXT NOT NULL,
    opened_at   TEXT NOT NULL,
    resolved_at TEXT,
    campuses    TEXT NOT NULL,
    open_alerts TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX incidents_state ON incidents (state);
