-- Blobs (the SDK's storage module). Versions 0400+ belong to attachments and push.
-- The bytes live outside the database (a file named after `uid` for the filesystem backend);
-- a row is the metadata and the one-time upload grant. Rows go with their owner (ON DELETE
-- CASCADE); the service removes the files first.
CREATE TABLE blobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL UNIQUE,
    app_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    public INTEGER NOT NULL DEFAULT 0,
    size INTEGER,
    -- SHA-256 of the upload token; NULL once the bytes arrived (the grant is one-time).
    upload_token_hash BLOB,
    upload_expires_at INTEGER NOT NULL,
    uploaded_at INTEGER,
    completed_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX blobs_owner ON blobs (app_id, user_id, id);
-- The sweep of blobs never completed.
CREATE INDEX blobs_incomplete ON blobs (created_at) WHERE completed_at IS NULL;
