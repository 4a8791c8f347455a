-- Every acknowledgement of an alert is kept: acknowledging again adds one, and the
-- alert's own acked_* columns show the latest. Acknowledgements stored before this
-- history existed (only the latest of each alert) start it.
CREATE TABLE alert_acks (
    id       INTEGER PRIMARY KEY,
    alert    INTEGER NOT NULL,
    by_name  TEXT NOT NULL,
    at       TEXT NOT NULL,
    comment  TEXT
);
CREATE INDEX alert_acks_alert ON alert_acks (alert, id);
INSERT INTO alert_acks (alert, by_name, at, comment)
SELECT id, acked_by, acked_at, ack_comment FROM alerts
 WHERE acked_by IS NOT NULL AND acked_at IS NOT NULL
 ORDER BY id;
