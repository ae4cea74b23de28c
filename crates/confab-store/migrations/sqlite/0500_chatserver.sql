-- The ChatServer face: its own device sessions, and stable ids for what the other face names with
-- ObjectIds (chats are UUIDs there, messages integers). Versions 0500+ belong to the ChatServer face.
CREATE TABLE chatserver_device_sessions (
    -- The session's UUID, upper case, as Swift writes it.
    id TEXT PRIMARY KEY,
    app_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- SHA-256 of the access token: a leaked database does not leak sessions.
    token_hash BLOB NOT NULL UNIQUE,
    -- The client's DeviceInfo, as JSON.
    device_info TEXT NOT NULL,
    ip_address TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX chatserver_device_sessions_user ON chatserver_device_sessions (app_id, user_id);

-- A chat's UUID for a dialog, given the first time the face shows the dialog.
CREATE TABLE chatserver_chats (
    uuid TEXT PRIMARY KEY,
    app_id INTEGER NOT NULL,
    dialog_id TEXT NOT NULL UNIQUE,
    -- Sorted participant ids joined with '+', for chats created on this face (dedupe).
    participants_key TEXT,
    is_personal INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX chatserver_chats_key ON chatserver_chats (app_id, participants_key, is_personal);

-- A message's integer id, given the first time the face shows the message.
CREATE TABLE chatserver_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id INTEGER NOT NULL,
    message_id TEXT NOT NULL UNIQUE
);
