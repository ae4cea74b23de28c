-- RFC 6121 contact lists (rosters) and presence subscription state.
-- A row is (owner, contact). `in_roster = 0` rows only remember a pending inbound subscription
-- request from someone the owner has not added (RFC 6121 §3.1.3), so it is delivered at next login.
CREATE TABLE roster_items (
    app_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    contact_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT,
    -- JSON array of group names.
    groups TEXT NOT NULL DEFAULT '[]',
    -- 'none' | 'to' | 'from' | 'both'
    subscription TEXT NOT NULL DEFAULT 'none',
    -- The owner asked to see the contact's presence and awaits an answer.
    ask INTEGER NOT NULL DEFAULT 0,
    -- The contact asked to see the owner's presence and awaits an answer.
    pending_in INTEGER NOT NULL DEFAULT 0,
    in_roster INTEGER NOT NULL DEFAULT 1,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, user_id, contact_id)
);
CREATE INDEX roster_items_contact ON roster_items (app_id, contact_id);
