-- Reports (see docs/reports.md). Plain types and no SQLite-only functions, so the
-- PostgreSQL flavour is the same text.

-- The server's runs: a row is written at start-up and its `alive_at` refreshed every
-- 30 s, so the time between one run's last `alive_at` and the next start is known to be
-- time the server was not watching: availability leaves it out (neither up nor down).
CREATE TABLE server_runs (
    id         INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    alive_at   TEXT NOT NULL
);
CREATE INDEX server_runs_started ON server_runs (started_at);

-- History from before runs were recorded counts as watched, from the first transition
-- to the last one received.
INSERT INTO server_runs (started_at, alive_at)
SELECT MIN(at), MAX(received_at) FROM transitions HAVING COUNT(*) > 0;

-- Daily coverage history, for the console's trend: per local day (at a UTC offset), per
-- region node holding campuses (`all` for the whole area) and per school type. Figures
-- are averaged over the day, like availability (maintenance and server gaps left
-- out): `observed` campuses had counted time; `reporting` … `fully_networked` are the
-- sums over those campuses of the share of the day they were so. Rates are sum /
-- observed; average counts are rate × registered.
CREATE TABLE coverage_daily (
    day                TEXT NOT NULL,
    utc_offset_minutes INTEGER NOT NULL,
    region             TEXT NOT NULL,
    school_type        TEXT NOT NULL,
    registered         INTEGER NOT NULL,
    observed           INTEGER NOT NULL,
    reporting          DOUBLE PRECISION NOT NULL,
    alarm_networked    DOUBLE PRECISION NOT NULL,
    video_networked    DOUBLE PRECISION NOT NULL,
    fully_networked    DOUBLE PRECISION NOT NULL,
    computed_at        TEXT NOT NULL,
    PRIMARY KEY (day, utc_offset_minutes, region, school_type)
);
