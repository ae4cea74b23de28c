-- A stored message updates its dialog's last_message* and every member's unread count and hidden
-- flag in the same statement, so one INSERT is the whole write and a failed one undoes all of it
-- (the SQLite trigger messages_dialog_insert, row for row). The dialog row is updated first: every
-- writer that touches several member rows of a dialog locks the dialog first (see
-- postgres/messages.rs), so they queue instead of deadlocking.
CREATE FUNCTION messages_dialog_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE dialogs SET last_message = NEW.body, last_message_date_sent = NEW.date_sent,
        last_message_id = NEW.id, last_message_user_id = NEW.sender_id, updated_at = NEW.created_at
        WHERE id = NEW.dialog_id;
    UPDATE dialog_members SET unread_count = unread_count + (user_id <> NEW.sender_id)::int,
        hidden = FALSE
        WHERE dialog_id = NEW.dialog_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER messages_dialog_insert AFTER INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_dialog_insert();
