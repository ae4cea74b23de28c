-- Offline messages are claimed by the session they are handed to and deleted only once the client
-- acknowledged them. A claim left by a session that ended unacknowledged, or by a killed server,
-- is released so the message is delivered again at the next login.
ALTER TABLE offline_messages ADD COLUMN claimed_by TEXT;
