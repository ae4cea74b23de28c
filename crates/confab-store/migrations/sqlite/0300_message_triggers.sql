-- A stored message updates its dialog's last_message* and every other member's unread count in
-- the same statement, so one INSERT is the whole write and a failed one undoes all of it.
CREATE TRIGGER messages_dialog_insert AFTER INSERT ON messages BEGIN
    UPDATE dialogs SET last_message = new.body, last_message_date_sent = new.date_sent,
        last_message_id = new.id, last_message_user_id = new.sender_id, updated_at = new.created_at
        WHERE id = new.dialog_id;
    UPDATE dialog_members SET unread_count = unread_count + (user_id != new.sender_id), hidden = 0
        WHERE dialog_id = new.dialog_id;
END;
