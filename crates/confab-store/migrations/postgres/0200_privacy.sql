-- XEP-0016 privacy lists. One row per list; the items are a JSON array in stored order (a list is
-- always read and written whole, so a child table would only add joins).
CREATE TABLE privacy_lists (
    app_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT COLLATE "C" NOT NULL,
    items TEXT NOT NULL,
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, app_id, name)
);
-- At most one default list per user.
CREATE UNIQUE INDEX privacy_lists_default ON privacy_lists (user_id, app_id) WHERE is_default;
