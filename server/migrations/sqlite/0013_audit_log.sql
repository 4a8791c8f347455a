-- The audit log of administrative actions: who (a user, or "local" for the command
-- line and with sign-in off), with which API token if any, did what to what, in which
-- region (NULL: the whole area), from which address. Kept history.audit_days.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,
    token    INTEGER,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    region   TEXT,
    details  TEXT NOT NULL,
    source   TEXT
);
CREATE INDEX audit_log_at ON audit_log (at, id);
CREATE INDEX audit_log_actor ON audit_log (actor, at);
CREATE INDEX audit_log_action ON audit_log (action, at);
