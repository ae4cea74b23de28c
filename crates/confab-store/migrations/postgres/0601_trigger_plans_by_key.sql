-- The statement trigger of migration 0600 reaches only the batch's dialogs and their member
-- rows, by key. PL/pgSQL plans each of its statements once per connection and keeps the plan
-- until the tables are analyzed again, which autovacuum does about once a minute at best. On a
-- new database the first batches were planned while `dialogs` and `dialog_members` were nearly
-- empty, as scans of the whole tables; as a burst of stored first contacts filled them, every
-- batch scanned more rows (over 16,000 dialogs compared with 256 ids, 65 ms per batch, 20 s
-- into a new database). Without sequential scans the only plans left are the key lookups,
-- whatever the tables' size when they were planned.
ALTER FUNCTION messages_dialogs_insert() SET enable_seqscan = off;
