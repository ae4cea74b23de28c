-- The ChatServer face's own REST state (as migrations/sqlite/0502_chatserver_rest.sql): what its
-- API has and the domain does not. Rows go with their user (ON DELETE CASCADE).

-- A user's "about" text.
CREATE TABLE chatserver_profiles (
    user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    app_id BIGINT NOT NULL,
    about TEXT NOT NULL
);

-- Pictures: a user's photos (owner 'user:<id>') and a group chat's images (owner 'chat:<UUID>').
CREATE TABLE chatserver_media (
    id TEXT COLLATE "C" PRIMARY KEY,
    app_id BIGINT NOT NULL,
    owner TEXT COLLATE "C" NOT NULL,
    added_by BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    file_type TEXT NOT NULL,
    file_size BIGINT NOT NULL,
    preview_width BIGINT NOT NULL,
    preview_height BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX chatserver_media_owner ON chatserver_media (app_id, owner, created_at);

-- A user's contacts: one row per (owner, contact).
CREATE TABLE chatserver_contacts (
    id TEXT COLLATE "C" PRIMARY KEY,
    app_id BIGINT NOT NULL,
    owner_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT,
    is_favorite BOOLEAN NOT NULL DEFAULT FALSE,
    is_blocked BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    UNIQUE (owner_id, user_id)
);

-- A user's flags on a group chat.
CREATE TABLE chatserver_chat_flags (
    dialog_id TEXT COLLATE "C" NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    app_id BIGINT NOT NULL,
    archived BOOLEAN NOT NULL DEFAULT FALSE,
    removed_on_device BOOLEAN NOT NULL DEFAULT FALSE,
    chat_blocked BOOLEAN NOT NULL DEFAULT FALSE,
    user_blocked BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (dialog_id, user_id)
);

-- A message posted invisible and later made visible by its author.
ALTER TABLE chatserver_messages ADD COLUMN shown BOOLEAN NOT NULL DEFAULT FALSE;

-- Uploads by name ("<name>.<type>"), each the bytes of one blob of the blobs service.
CREATE TABLE chatserver_files (
    app_id BIGINT NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    blob_id BIGINT NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
    PRIMARY KEY (app_id, name)
);
