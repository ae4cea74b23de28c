-- Id lists (occupants excepted) are stored as ",1,2," so membership is one instr() test.
CREATE TABLE dialogs (
    id                     TEXT    PRIMARY KEY,
    app_id                 INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    type                   INTEGER NOT NULL,
    owner_id               INTEGER NOT NULL,
    name                   TEXT,
    description            TEXT,
    photo                  TEXT,
    admins_ids             TEXT    NOT NULL DEFAULT '',
    pinned_messages_ids    TEXT    NOT NULL DEFAULT '',
    data                   TEXT,
    -- "<low user id>:<high user id>" for private dialogs, so each pair has one dialog.
    private_key            TEXT,
    last_message           TEXT,
    last_message_date_sent INTEGER,
    last_message_id        TEXT,
    last_message_user_id   INTEGER,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);
CREATE UNIQUE INDEX dialogs_private ON dialogs(app_id, private_key) WHERE private_key IS NOT NULL;
CREATE INDEX dialogs_app_type ON dialogs(app_id, type);
CREATE INDEX dialogs_app_id ON dialogs(app_id, id);

-- Occupants (group/private), subscribers (public), and per-user state of any dialog.
CREATE TABLE dialog_members (
    dialog_id      TEXT    NOT NULL REFERENCES dialogs(id) ON DELETE CASCADE,
    user_id        INTEGER NOT NULL,
    -- 1: occupant or subscriber; 0: only per-user state (e.g. a broadcast reader).
    occupant       INTEGER NOT NULL DEFAULT 1,
    -- Deleted "for me": hidden from my list until a new message arrives.
    hidden         INTEGER NOT NULL DEFAULT 0,
    unread_count   INTEGER NOT NULL DEFAULT 0,
    notifications  INTEGER NOT NULL DEFAULT 1,
    muted          INTEGER NOT NULL DEFAULT 0,
    -- clearHistory: messages with ids up to this one are gone for this user.
    cleared_before TEXT,
    joined_at      INTEGER NOT NULL,
    PRIMARY KEY (dialog_id, user_id)
) WITHOUT ROWID;
CREATE INDEX dialog_members_user ON dialog_members(user_id, dialog_id);

CREATE TABLE messages (
    id               TEXT    NOT NULL UNIQUE,
    dialog_id        TEXT    NOT NULL REFERENCES dialogs(id) ON DELETE CASCADE,
    app_id           INTEGER NOT NULL,
    sender_id        INTEGER NOT NULL,
    recipient_id     INTEGER NOT NULL DEFAULT 0,
    body             TEXT,
    date_sent        INTEGER NOT NULL,
    attachments      TEXT    NOT NULL DEFAULT '[]',
    attachment_types TEXT    NOT NULL DEFAULT '',
    custom           TEXT,
    read_ids         TEXT    NOT NULL DEFAULT '',
    delivered_ids    TEXT    NOT NULL DEFAULT '',
    deleted_for_ids  TEXT    NOT NULL DEFAULT '',
    reactions        TEXT    NOT NULL DEFAULT '{}',
    markable         INTEGER NOT NULL DEFAULT 0,
    views_count      INTEGER NOT NULL DEFAULT 0,
    edited_at        INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX messages_dialog_date ON messages(dialog_id, date_sent, id);
CREATE INDEX messages_dialog_id ON messages(dialog_id, id);
CREATE INDEX messages_app_id ON messages(app_id, id);

-- Full-text index over message bodies (external content: the text lives in messages only).
CREATE VIRTUAL TABLE messages_fts USING fts5(body, content='messages', content_rowid='rowid');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, body) VALUES (new.rowid, new.body);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.rowid, old.body);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.rowid, old.body);
    INSERT INTO messages_fts(rowid, body) VALUES (new.rowid, new.body);
END;
