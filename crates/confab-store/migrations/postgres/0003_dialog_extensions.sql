-- Free-form `extensions` object the SDK sends on dialog create/update.
ALTER TABLE dialogs ADD COLUMN extensions JSONB;
