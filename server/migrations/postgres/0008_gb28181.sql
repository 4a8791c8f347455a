-- GB/T 28181: the device and channel codes each campus lists (separated by ';'), and
-- the devices registered to the server as a platform, each one row with its record
-- (registration, keepalive, catalog channels) as JSON.
ALTER TABLE registry ADD COLUMN gb_device_ids TEXT NOT NULL DEFAULT '';
CREATE TABLE gb_devices (
    code       TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    record     TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- Each campus's daily availability of video by the agent's view alone and by the
-- GB/T 28181 view (NULL: the campus listed no GB/T 28181 codes). Days rolled up before
-- these columns: the agent's view was the only one, so it is `video_*`.
ALTER TABLE availability_daily ADD COLUMN video_agent_counted_ms BIGINT;
ALTER TABLE availability_daily ADD COLUMN video_agent_up_ms BIGINT;
ALTER TABLE availability_daily ADD COLUMN video_platform_counted_ms BIGINT;
ALTER TABLE availability_daily ADD COLUMN video_platform_up_ms BIGINT;
