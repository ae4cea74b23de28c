-- A private dialog's two occupants are the users its key "<low>:<high>" names, so inserting the
-- dialog row adds them in the same statement: creating a private dialog is one INSERT, and one
-- that loses the ON CONFLICT race adds nobody (an AFTER trigger fires only for inserted rows).
CREATE FUNCTION dialogs_private_members() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dialog_members (dialog_id, user_id, occupant, joined_at) VALUES
        (NEW.id, split_part(NEW.private_key, ':', 1)::bigint, TRUE, NEW.created_at),
        (NEW.id, split_part(NEW.private_key, ':', 2)::bigint, TRUE, NEW.created_at)
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER dialogs_private_members AFTER INSERT ON dialogs
    FOR EACH ROW WHEN (NEW.private_key IS NOT NULL) EXECUTE FUNCTION dialogs_private_members();
