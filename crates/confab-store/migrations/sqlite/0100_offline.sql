-- Offline message queue of the XMPP face: stanzas for users with no online session, delivered (with
-- XEP-0203 <delay/>) and removed at their next login. Versions 0100+ belong to the XMPP branch.
CREATE TABLE offline_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- The rendered stanza, `from` already stamped.
    stanza TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX offline_messages_recipient ON offline_messages (app_id, user_id, id);
