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
