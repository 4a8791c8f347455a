-- Retention of the raw transition history (see docs/reports.md, "Retention").
-- Each local day's availability per campus, kept when the raw rows of the day are gone:
-- counted and up milliseconds per link (gateway, alarm, video, fully networked), and
-- the campus's state at the end of the day with since when it has not been fully
-- networked (carried over from the days before; NULL when it was fully networked).
CREATE TABLE availability_daily (
    day                TEXT NOT NULL,
    utc_offset_minutes INTEGER NOT NULL,
    campus             TEXT NOT NULL,
    region             TEXT NOT NULL,
    gateway_counted_ms INTEGER NOT NULL,
    gateway_up_ms      INTEGER NOT NULL,
    alarm_counted_ms   INTEGER NOT NULL,
    alarm_up_ms        INTEGER NOT NULL,
    video_counted_ms   INTEGER NOT NULL,
    video_up_ms        INTEGER NOT NULL,
    fully_counted_ms   INTEGER NOT NULL,
    fully_up_ms        INTEGER NOT NULL,
    end_online         BOOLEAN NOT NULL,
    end_alarm          BOOLEAN NOT NULL,
    end_video          BOOLEAN NOT NULL,
    not_fully_since    TEXT,
    PRIMARY KEY (day, utc_offset_minutes, campus)
);

-- Where the raw history starts: transitions before `raw_from` (a local midnight at
-- `utc_offset_minutes`) were removed, but for each link's last one before it.
CREATE TABLE history_horizon (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    raw_from           TEXT NOT NULL,
    utc_offset_minutes INTEGER NOT NULL,
    updated_at         TEXT NOT NULL
);
