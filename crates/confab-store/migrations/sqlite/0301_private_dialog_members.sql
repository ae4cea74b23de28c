-- A private dialog's two occupants are the users its key "<low>:<high>" names, so inserting the
-- dialog row adds them in the same statement: creating a private dialog is one INSERT (atomic
-- without an explicit transaction), and one that loses the ON CONFLICT race adds nobody.
CREATE TRIGGER dialogs_private_members AFTER INSERT ON dialogs WHEN new.private_key IS NOT NULL BEGIN
    INSERT OR IGNORE INTO dialog_members (dialog_id, user_id, occupant, joined_at) VALUES
        (new.id, CAST(substr(new.private_key, 1, instr(new.private_key, ':') - 1) AS INTEGER), 1, new.created_at),
        (new.id, CAST(substr(new.private_key, instr(new.private_key, ':') + 1) AS INTEGER), 1, new.created_at);
END;
