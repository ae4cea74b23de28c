-- Push: the devices that asked for notifications, and the durable outbox of notifications on
-- their way to a provider.
CREATE TABLE push_subscriptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- gcm, apns, apns_voip or web.
    channel TEXT NOT NULL,
    -- development or production (picks the APNs gateway).
    environment TEXT NOT NULL,
    -- ios, android or web.
    platform TEXT NOT NULL,
    udid TEXT NOT NULL,
    -- The provider's device token, or the Web Push endpoint URL.
    token TEXT NOT NULL,
    web_auth TEXT,
    web_p256dh TEXT,
    bundle_identifier TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    -- A new token for the same device and channel replaces the old one.
    UNIQUE (app_id, user_id, udid, channel)
);
CREATE INDEX push_subscriptions_user ON push_subscriptions (app_id, user_id);

-- One row per notification and destination: a subscription, or (subscription_id NULL) the
-- operator's webhook. A row is deleted once the destination acknowledged it; `due_at` moves
-- forward while a worker holds it (a lease) and after a failure (the backoff).
CREATE TABLE push_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    subscription_id INTEGER REFERENCES push_subscriptions(id) ON DELETE CASCADE,
    -- The notification as JSON (see confab_store::push::Notification).
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    due_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX push_outbox_due ON push_outbox (due_at);
