CREATE TABLE apps (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL,
    auth_key     TEXT    NOT NULL UNIQUE,
    auth_secret  TEXT    NOT NULL,
    api_key_hash BLOB    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL
);

CREATE TABLE users (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id           INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    login            TEXT COLLATE NOCASE,
    email            TEXT COLLATE NOCASE,
    full_name        TEXT,
    phone            TEXT,
    website          TEXT,
    external_user_id INTEGER,
    external_id      TEXT,
    facebook_id      TEXT,
    twitter_id       TEXT,
    custom_data      TEXT,
    blob_id          INTEGER,
    avatar           TEXT,
    timezone         INTEGER,
    tags             TEXT    NOT NULL DEFAULT '',
    is_guest         INTEGER NOT NULL DEFAULT 0,
    password_hash    TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    last_request_at  INTEGER
);
CREATE UNIQUE INDEX users_login ON users(app_id, login) WHERE login IS NOT NULL;
CREATE UNIQUE INDEX users_email ON users(app_id, email) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX users_external ON users(app_id, external_user_id) WHERE external_user_id IS NOT NULL;

CREATE TABLE sessions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id     INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    user_id    INTEGER REFERENCES users(id) ON DELETE CASCADE,
    token_hash BLOB    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expiry ON sessions(expires_at);
CREATE INDEX sessions_user ON sessions(user_id);
