-- RFC 6121 contact lists (rosters) and presence subscription state.
-- A row is (owner, contact). `in_roster = FALSE` rows only remember a pending inbound subscription
-- request from someone the owner has not added (RFC 6121 §3.1.3), so it is delivered at next login.
CREATE TABLE roster_items (
    app_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    contact_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT,
    -- JSON array of group names.
    groups TEXT NOT NULL DEFAULT '[]',
    -- 'none' | 'to' | 'from' | 'both'
    subscription TEXT NOT NULL DEFAULT 'none',
    -- The owner asked to see the contact's presence and awaits an answer.
    ask BOOLEAN NOT NULL DEFAULT FALSE,
    -- The contact asked to see the owner's presence and awaits an answer.
    pending_in BOOLEAN NOT NULL DEFAULT FALSE,
    in_roster BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, app_id, contact_id)
);
CREATE INDEX roster_items_contact ON roster_items (contact_id, app_id);
