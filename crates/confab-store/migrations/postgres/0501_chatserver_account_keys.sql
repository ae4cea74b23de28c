-- The ChatServer face's account keys: a user-chosen secret that resets the password. Only an
-- Argon2 hash is kept, as for passwords.
CREATE TABLE chatserver_account_keys (
    user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    app_id BIGINT NOT NULL,
    key_hash TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
