-- When each campus entered the registry (kept by later imports that update it), so that
-- a campus never networked is said to be so "since it was registered", never since a
-- time before it was. Rows registered before this column existed take the time of their
-- last import, the earliest time the store knows them by.
ALTER TABLE registry ADD COLUMN registered_at TEXT;
UPDATE registry SET registered_at = updated_at;
