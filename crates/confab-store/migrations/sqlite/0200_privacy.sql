-- XEP-0016 privacy lists. Versions 0200+ belong to the xmpp2 branch (privacy lists, contact lists).
-- One row per list; the items are a JSON array in stored order (a list is always read and written
-- whole, so a child table would only add joins).
CREATE TABLE privacy_lists (
    app_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    items TEXT NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, user_id, name)
);
-- At most one default list per user.
CREATE UNIQUE INDEX privacy_lists_default ON privacy_lists (app_id, user_id) WHERE is_default = 1;
