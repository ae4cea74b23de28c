-- Id lists are arrays here (SQLite keeps ",1,2," strings): membership is `x = ANY(col)`.
-- Object ids are compared and sorted byte-wise (COLLATE "C"), as SQLite's BINARY collation does,
-- whatever the database's default collation.
CREATE TABLE dialogs (
    id                     TEXT COLLATE "C" PRIMARY KEY,
    app_id                 BIGINT   NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    type                   BIGINT   NOT NULL,
    owner_id               BIGINT   NOT NULL,
    name                   TEXT,
    description            TEXT,
    photo                  TEXT,
    admins_ids             BIGINT[] NOT NULL DEFAULT '{}',
    pinned_messages_ids    TEXT[]   NOT NULL DEFAULT '{}',
    -- JSONB: custom parameters are filtered on (data -> 'name').
    data                   JSONB,
    -- "<low user id>:<high user id>" for private dialogs, so each pair has one dialog.
    private_key            TEXT COLLATE "C",
    last_message           TEXT,
    last_message_date_sent BIGINT,
    last_message_id        TEXT COLLATE "C",
    last_message_user_id   BIGINT,
    created_at             BIGINT   NOT NULL,
    updated_at             BIGINT   NOT NULL
);
CREATE UNIQUE INDEX dialogs_private ON dialogs (app_id, private_key) WHERE private_key IS NOT NULL;
CREATE INDEX dialogs_app_type ON dialogs (app_id, type);
CREATE INDEX dialogs_app_id ON dialogs (app_id, id);

-- Occupants (group/private), subscribers (public), and per-user state of any dialog.
CREATE TABLE dialog_members (
    dialog_id      TEXT COLLATE "C" NOT NULL REFERENCES dialogs(id) ON DELETE CASCADE,
    user_id        BIGINT  NOT NULL,
    -- Occupant or subscriber; FALSE: only per-user state (e.g. a broadcast reader).
    occupant       BOOLEAN NOT NULL DEFAULT TRUE,
    -- Deleted "for me": hidden from my list until a new message arrives.
    hidden         BOOLEAN NOT NULL DEFAULT FALSE,
    unread_count   BIGINT  NOT NULL DEFAULT 0,
    notifications  BOOLEAN NOT NULL DEFAULT TRUE,
    muted          BOOLEAN NOT NULL DEFAULT FALSE,
    -- clearHistory: messages with ids up to this one are gone for this user.
    cleared_before TEXT COLLATE "C",
    joined_at      BIGINT  NOT NULL,
    PRIMARY KEY (dialog_id, user_id)
);
CREATE INDEX dialog_members_user ON dialog_members (user_id, dialog_id);

CREATE TABLE messages (
    id               TEXT COLLATE "C" PRIMARY KEY,
    dialog_id        TEXT COLLATE "C" NOT NULL REFERENCES dialogs(id) ON DELETE CASCADE,
    app_id           BIGINT   NOT NULL,
    sender_id        BIGINT   NOT NULL,
    recipient_id     BIGINT   NOT NULL DEFAULT 0,
    body             TEXT,
    date_sent        BIGINT   NOT NULL,
    -- JSON text, kept byte for byte as the client sent it (never queried inside).
    attachments      TEXT     NOT NULL DEFAULT '[]',
    attachment_types TEXT[]   NOT NULL DEFAULT '{}',
    custom           TEXT,
    read_ids         BIGINT[] NOT NULL DEFAULT '{}',
    delivered_ids    BIGINT[] NOT NULL DEFAULT '{}',
    deleted_for_ids  BIGINT[] NOT NULL DEFAULT '{}',
    reactions        TEXT     NOT NULL DEFAULT '{}',
    markable         BOOLEAN  NOT NULL DEFAULT FALSE,
    views_count      BIGINT   NOT NULL DEFAULT 0,
    edited_at        BIGINT,
    created_at       BIGINT   NOT NULL,
    updated_at       BIGINT   NOT NULL,
    -- Full-text index over bodies (SQLite: the external-content FTS5 table and its triggers),
    -- kept up to date by PostgreSQL itself on every insert and edit. Tokens as FTS5's unicode61
    -- tokenizer makes them: punctuation separates words (PostgreSQL's parser would otherwise keep
    -- "alice@example.com", "3.14" or "quick-brown" whole), and the 'simple' configuration only
    -- lower-cases (no stemming, no stop words). The search applies the same expression to its
    -- terms (postgres/messages.rs).
    body_tsv         TSVECTOR GENERATED ALWAYS AS
        (to_tsvector('simple', regexp_replace(COALESCE(body, ''), '[[:punct:]]+', ' ', 'g'))) STORED
);
CREATE INDEX messages_dialog_date ON messages (dialog_id, date_sent, id);
CREATE INDEX messages_dialog_id ON messages (dialog_id, id);
CREATE INDEX messages_app_id ON messages (app_id, id);
CREATE INDEX messages_fts ON messages USING GIN (body_tsv);
