-- The ChatServer face's own REST state: what its API has and the domain does not. Rows go with
-- their user (ON DELETE CASCADE).

-- A user's "about" text (the domain's users have no such field).
CREATE TABLE chatserver_profiles (
    user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    app_id INTEGER NOT NULL,
    about TEXT NOT NULL
);

-- Pictures: a user's photos (owner 'user:<id>') and a group chat's images (owner 'chat:<UUID>').
-- Metadata only; the bytes are uploads (chatserver_files) named after the id.
CREATE TABLE chatserver_media (
    id TEXT PRIMARY KEY,
    app_id INTEGER NOT NULL,
    owner TEXT NOT NULL,
    -- Who added it: the user's photos go with the user.
    added_by INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    file_type TEXT NOT NULL,
    file_size INTEGER NOT NULL,
    preview_width INTEGER NOT NULL,
    preview_height INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX chatserver_media_owner ON chatserver_media (app_id, owner, created_at);

-- A user's contacts: one row per (owner, contact).
CREATE TABLE chatserver_contacts (
    id TEXT PRIMARY KEY,
    app_id INTEGER NOT NULL,
    owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT,
    is_favorite INTEGER NOT NULL DEFAULT 0,
    is_blocked INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    UNIQUE (owner_id, user_id)
);

-- A user's flags on a group chat (mute is the domain's; these are not): their own archive,
-- removed-on-device and block of the chat, and whether they are blocked in it.
CREATE TABLE chatserver_chat_flags (
    dialog_id TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    app_id INTEGER NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    removed_on_device INTEGER NOT NULL DEFAULT 0,
    chat_blocked INTEGER NOT NULL DEFAULT 0,
    user_blocked INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (dialog_id, user_id)
);

-- A message posted invisible (`isVisible: false`) and later made visible by its author.
ALTER TABLE chatserver_messages ADD COLUMN shown INTEGER NOT NULL DEFAULT 0;

-- Uploads by name ("<name>.<type>"), each the bytes of one blob of the blobs service.
CREATE TABLE chatserver_files (
    app_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    blob_id INTEGER NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
    PRIMARY KEY (app_id, name)
);
