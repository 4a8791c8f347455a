-- Maintenance windows; `body` is the window as JSON. Withdrawn windows are kept, with
-- `removed_at`, for history and availability.
CREATE TABLE maintenance (
    id         INTEGER PRIMARY KEY,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    removed_at TEXT
);
