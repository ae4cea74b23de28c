//! [`DialogStore`] on SQLite.

use async_trait::async_trait;
use confab_core::chat::{Dialog, DialogType, MemberState};
use confab_core::clock::Millis;
use confab_core::query::Query;
use confab_core::{Error, ObjectId, Result};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::private_dialog_writer::{pair_key, PrivateDialogRow};
use super::rows::*;
use super::{db, SqliteStore};
use crate::chat::{AdminDialogInfo, DialogStore, MemberChange, Membership, PostTarget, Viewer};

impl SqliteStore {
    /// Inserts private dialog `d` of users `low` and `high` (batched with concurrent ones) when
    /// both exist. When nothing was inserted, the pair's existing dialog, or `None` for an
    /// unknown user.
    async fn insert_private(&self, d: &Dialog, low: i64, high: i64) -> Result<Option<ObjectId>> {
        let row = PrivateDialogRow::new(d, low, high);
        let inserted = self.private_dialogs.write(row).await?;
        if inserted {
            return Ok(Some(d.id));
        }
        self.find_private_dialog(d.app_id, &pair_key(low, high))
            .await
    }

    /// Inserts a group dialog's row; whether it was inserted (its id was not taken).
    async fn insert_group_row(tx: &mut sqlx::Transaction<'_, Sqlite>, d: &Dialog) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO dialogs (id, app_id, type, owner_id, name, description, photo, admins_ids, \
             pinned_messages_ids, data, created_at, updated_at, extensions) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(d.id.to_string())
        .bind(d.app_id)
        .bind(d.kind as i64)
        .bind(d.owner_id)
        .bind(&d.name)
        .bind(&d.description)
        .bind(&d.photo)
        .bind(encode_ids(&d.admins_ids))
        .bind(encode_ids(&d.pinned_messages_ids))
        .bind(encode_object(&d.data))
        .bind(d.created_at)
        .bind(d.updated_at)
        .bind(encode_object(&d.extensions))
        .execute(&mut **tx)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    /// Keeps `last_message*` pointing at the newest remaining message.
    pub(super) async fn refresh_last_message(
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        dialog: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE dialogs SET (last_message, last_message_date_sent, last_message_id, last_message_user_id) = \
             (SELECT body, date_sent, id, sender_id FROM messages WHERE dialog_id = ?1 ORDER BY date_sent DESC, id DESC LIMIT 1) \
             WHERE id = ?1",
        )
        .bind(dialog)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
        Ok(())
    }
}

#[async_trait]
impl DialogStore for SqliteStore {
    async fn insert_dialog(
        &self,
        d: &Dialog,
        private_key: Option<&str>,
        members: &[i64],
    ) -> Result<ObjectId> {
        if let Some(key) = private_key {
            // The members come from the key (see `sqlite_private_dialogs`).
            let &[low, high] = members else {
                return Err(Error::bad_request("a private dialog has two occupants"));
            };
            debug_assert_eq!(key, pair_key(low, high), "members are the key's pair");
            // Users were checked by the caller; `None` only if one was deleted meanwhile.
            return self
                .insert_private(d, low, high)
                .await?
                .ok_or_else(|| Error::not_found("User not found"));
        }
        let _write = self.write.lock().await;
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await.map_err(db)?;
        if !Self::insert_group_row(&mut tx, d).await? {
            tx.rollback().await.map_err(db)?;
            return Err(Error::bad_request("duplicate dialog id"));
        }
        for user in members {
            sqlx::query(
                "INSERT OR IGNORE INTO dialog_members (dialog_id, user_id, occupant, joined_at) VALUES (?, ?, 1, ?)",
            )
            .bind(d.id.to_string())
            .bind(user)
            .bind(d.created_at)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        conn.committed();
        Ok(d.id)
    }

    async fn create_private_dialog(
        &self,
        d: &Dialog,
        low: i64,
        high: i64,
    ) -> Result<Option<ObjectId>> {
        debug_assert!(
            low < high,
            "a private dialog's pair is ordered and distinct"
        );
        // A pair that has its dialog is a read in place, not a trip through the writer.
        if let Some(id) = self
            .find_private_dialog(d.app_id, &pair_key(low, high))
            .await?
        {
            return Ok(Some(id));
        }
        self.insert_private(d, low, high).await
    }

    async fn find_private_dialog(&self, app_id: i64, key: &str) -> Result<Option<ObjectId>> {
        // The first message of every pair after a start asks this: read in place.
        let id: Option<String> = self.reads.run(|c| {
            let mut q =
                c.prepare_cached("SELECT id FROM dialogs WHERE app_id = ?1 AND private_key = ?2")?;
            let mut rows = q.query(rusqlite::params![app_id, key])?;
            rows.next()?.map(|r| r.get(0)).transpose()
        })?;
        Ok(id.map(|s| oid(&s)))
    }

    async fn dialog(&self, app_id: i64, id: ObjectId) -> Result<Option<Dialog>> {
        let row = sqlx::query(&format!(
            "SELECT {DIALOG_COLUMNS} FROM dialogs d WHERE d.id = ? AND d.app_id = ?"
        ))
        .bind(id.to_string())
        .bind(app_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(dialog_from_row).transpose()
    }

    async fn post_target(
        &self,
        app_id: i64,
        dialog: ObjectId,
        user: i64,
    ) -> Result<Option<PostTarget>> {
        // Every stored message asks this: read in place (see `sqlite_inline`).
        let row = self.reads.run(|c| {
            let mut q = c.prepare_cached(
                "SELECT d.type, d.owner_id, d.admins_ids, \
                 EXISTS (SELECT 1 FROM dialog_members WHERE dialog_id = d.id AND user_id = ?1 AND occupant = 1), \
                 CASE WHEN d.type = 3 THEN (SELECT user_id FROM dialog_members WHERE dialog_id = d.id \
                     AND occupant = 1 AND user_id != ?1 ORDER BY user_id LIMIT 1) END \
                 FROM dialogs d WHERE d.id = ?2 AND d.app_id = ?3",
            )?;
            let mut rows = q.query(rusqlite::params![user, dialog.to_string(), app_id])?;
            let Some(r) = rows.next()? else {
                return Ok(None);
            };
            let row: (i64, i64, String, bool, Option<i64>) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
            Ok(Some(row))
        })?;
        row.map(
            |(kind, owner_id, admins, member, other)| -> Result<PostTarget> {
                Ok(PostTarget {
                    kind: DialogType::from_i64(kind)?,
                    owner_id,
                    admins_ids: decode_ints(&admins),
                    member,
                    recipient_id: other.unwrap_or(0),
                })
            },
        )
        .transpose()
    }

    async fn membership(&self, dialog: ObjectId, user: i64) -> Result<Option<Membership>> {
        let row = sqlx::query(
            "SELECT occupant, hidden, unread_count, notifications, muted, cleared_before \
             FROM dialog_members WHERE dialog_id = ? AND user_id = ?",
        )
        .bind(dialog.to_string())
        .bind(user)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.map(|r| -> Result<Membership> {
            let cleared: Option<String> = r.try_get("cleared_before").map_err(db)?;
            Ok(Membership {
                occupant: r.try_get("occupant").map_err(db)?,
                state: MemberState {
                    unread_count: r.try_get("unread_count").map_err(db)?,
                    notifications: r.try_get("notifications").map_err(db)?,
                    muted: r.try_get("muted").map_err(db)?,
                    hidden: r.try_get("hidden").map_err(db)?,
                },
                cleared_before: cleared.map(|c| oid(&c)),
            })
        })
        .transpose()
    }

    async fn list_dialogs(
        &self,
        app_id: i64,
        viewer: Viewer,
        query: &Query,
    ) -> Result<(Vec<(Dialog, MemberState)>, u64)> {
        let user = match viewer {
            Viewer::User(u) => u,
            Viewer::Admin => 0,
        };
        // Integer ids are formatted into the SQL; only filter values are bound.
        let from = |q: &mut QueryBuilder<'_, Sqlite>| -> Result<()> {
            q.push(format!(
                " FROM dialogs d LEFT JOIN dialog_members mb ON mb.dialog_id = d.id AND mb.user_id = {user} \
                 WHERE d.app_id = {app_id}"
            ));
            if let Viewer::User(_) = viewer {
                q.push(
                    " AND ((d.type != 1 AND mb.occupant = 1 AND mb.hidden = 0) \
                       OR (d.type = 1 AND COALESCE(mb.hidden, 0) = 0))",
                );
            }
            push_conditions(q, &query.conditions, false)
        };
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*)");
        from(&mut count)?;
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        if query.limit == 0 {
            return Ok((Vec::new(), total as u64));
        }
        let default_sort = match viewer {
            Viewer::User(_) => {
                "COALESCE(d.last_message_date_sent, d.created_at / 1000) DESC, d.created_at DESC, d.id DESC"
            }
            Viewer::Admin => "d.id DESC",
        };
        // Two steps: pick the page's ids with cheap columns only, then compute the costly ones
        // (occupant lists, counts, the last message's receipts) for those rows alone.
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {DIALOG_COLUMNS}, COALESCE(mb.unread_count, CASE WHEN d.type = 1 THEN {} ELSE 0 END) AS unread, \
             COALESCE(mb.notifications, 1) AS notifications, COALESCE(mb.muted, 0) AS muted \
             FROM dialogs d LEFT JOIN dialog_members mb ON mb.dialog_id = d.id AND mb.user_id = {user} \
             WHERE d.id IN (SELECT d.id",
            unread_without_row(user)
        ));
        from(&mut q)?;
        push_sort(&mut q, &query.sort, false, default_sort)?;
        push_page(&mut q, query);
        q.push(")");
        push_sort(&mut q, &query.sort, false, default_sort)?;
        let rows = q.build().fetch_all(&self.pool).await.map_err(db)?;
        let items = rows
            .iter()
            .map(|r| {
                Ok((
                    dialog_from_row(r)?,
                    MemberState {
                        unread_count: r.try_get("unread").map_err(db)?,
                        notifications: r.try_get("notifications").map_err(db)?,
                        muted: r.try_get("muted").map_err(db)?,
                        hidden: false,
                    },
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((items, total as u64))
    }

    async fn admin_dialog_info(&self, dialog: ObjectId) -> Result<AdminDialogInfo> {
        let rows = sqlx::query("SELECT user_id, muted, hidden FROM dialog_members WHERE dialog_id = ? ORDER BY user_id")
            .bind(dialog.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut info = AdminDialogInfo::default();
        for r in rows {
            let user: i64 = r.get("user_id");
            if r.get::<bool, _>("muted") {
                info.silent_ids.push(user);
            }
            if r.get::<bool, _>("hidden") {
                info.deleted_ids.push(user);
            }
        }
        Ok(info)
    }

    async fn save_dialog(&self, d: &Dialog) -> Result<()> {
        let _write = self.write.lock().await;
        sqlx::query(
            "UPDATE dialogs SET name = ?, description = ?, photo = ?, admins_ids = ?, \
             pinned_messages_ids = ?, data = ?, updated_at = ?, extensions = ? WHERE id = ?",
        )
        .bind(&d.name)
        .bind(&d.description)
        .bind(&d.photo)
        .bind(encode_ids(&d.admins_ids))
        .bind(encode_ids(&d.pinned_messages_ids))
        .bind(encode_object(&d.data))
        .bind(d.updated_at)
        .bind(encode_object(&d.extensions))
        .bind(d.id.to_string())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn add_members(&self, dialog: ObjectId, users: &[i64], now: Millis) -> Result<()> {
        let _write = self.write.lock().await;
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await.map_err(db)?;
        for user in users {
            sqlx::query(
                "INSERT INTO dialog_members (dialog_id, user_id, occupant, joined_at) VALUES (?, ?, 1, ?) \
                 ON CONFLICT (dialog_id, user_id) DO UPDATE SET occupant = 1, hidden = 0",
            )
            .bind(dialog.to_string())
            .bind(user)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        conn.committed();
        Ok(())
    }

    async fn remove_members(&self, dialog: ObjectId, users: &[i64]) -> Result<()> {
        let _write = self.write.lock().await;
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await.map_err(db)?;
        for user in users {
            sqlx::query("DELETE FROM dialog_members WHERE dialog_id = ? AND user_id = ?")
                .bind(dialog.to_string())
                .bind(user)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        conn.committed();
        Ok(())
    }

    async fn set_member_state(
        &self,
        dialog: ObjectId,
        user: i64,
        change: MemberChange,
        now: Millis,
    ) -> Result<()> {
        let (column, value): (&str, String) = match change {
            MemberChange::Hidden(v) => ("hidden", i64::from(v).to_string()),
            MemberChange::Notifications(v) => ("notifications", i64::from(v).to_string()),
            MemberChange::Muted(v) => ("muted", i64::from(v).to_string()),
            MemberChange::ClearedBefore(id) => ("cleared_before", id.to_string()),
        };
        let _write = self.write.lock().await;
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await.map_err(db)?;
        // A reader without a row starts with what they have not read yet.
        sqlx::query(
            "INSERT OR IGNORE INTO dialog_members (dialog_id, user_id, occupant, unread_count, joined_at) \
             VALUES (?1, ?2, 0, (SELECT COUNT(*) FROM messages x WHERE x.dialog_id = ?1 AND x.sender_id != ?2 \
             AND instr(x.read_ids, ',' || ?2 || ',') = 0), ?3)",
        )
        .bind(dialog.to_string())
        .bind(user)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let q =
            format!("UPDATE dialog_members SET {column} = ? WHERE dialog_id = ? AND user_id = ?");
        let mut stmt = sqlx::query(&q);
        stmt = match change {
            MemberChange::ClearedBefore(_) => stmt.bind(value),
            _ => stmt.bind(value.parse::<i64>().unwrap_or(0)),
        };
        stmt.bind(dialog.to_string())
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if let MemberChange::ClearedBefore(_) = change {
            sqlx::query(
                "UPDATE dialog_members SET unread_count = 0 WHERE dialog_id = ? AND user_id = ?",
            )
            .bind(dialog.to_string())
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        conn.committed();
        Ok(())
    }

    async fn delete_dialog(&self, dialog: ObjectId) -> Result<()> {
        let _write = self.write.lock().await;
        sqlx::query("DELETE FROM dialogs WHERE id = ?")
            .bind(dialog.to_string())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn members(&self, dialog: ObjectId, limit: u32, skip: u32) -> Result<(Vec<i64>, u64)> {
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM dialog_members WHERE dialog_id = ? AND occupant = 1",
        )
        .bind(dialog.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT user_id FROM dialog_members WHERE dialog_id = ? AND occupant = 1 ORDER BY user_id LIMIT ? OFFSET ?",
        )
        .bind(dialog.to_string())
        .bind(i64::from(limit))
        .bind(i64::from(skip))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok((ids, total as u64))
    }
}

#[cfg(test)]
mod tests {
    use confab_core::chat::{Dialog, DialogType};
    use confab_core::ObjectId;

    use crate::chat::DialogStore;
    use crate::sqlite::privacy::tests::account;
    use crate::sqlite::SqliteStore;
    use crate::AccountStore;

    /// user_id, occupant, hidden, unread_count, notifications, muted, cleared_before, joined_at.
    type MemberRow = (i64, i64, i64, i64, i64, i64, Option<String>, i64);

    fn private(app: i64, owner: i64, now: i64) -> Dialog {
        Dialog {
            id: ObjectId::generate(),
            app_id: app,
            kind: DialogType::Private,
            owner_id: owner,
            name: None,
            description: None,
            photo: None,
            occupants_ids: Vec::new(),
            occupants_count: 0,
            admins_ids: Vec::new(),
            pinned_messages_ids: Vec::new(),
            data: None,
            extensions: None,
            last_message: None,
            last_message_date_sent: None,
            last_message_id: None,
            last_message_user_id: None,
            last_message_delivered_ids: Vec::new(),
            last_message_read_ids: Vec::new(),
            created_at: now,
            updated_at: now,
        }
    }

    async fn counts(s: &SqliteStore) -> (i64, i64) {
        let dialogs = sqlx::query_scalar("SELECT COUNT(*) FROM dialogs")
            .fetch_one(s.pool())
            .await
            .unwrap();
        let members = sqlx::query_scalar("SELECT COUNT(*) FROM dialog_members")
            .fetch_one(s.pool())
            .await
            .unwrap();
        (dialogs, members)
    }

    #[tokio::test]
    async fn private_dialog_is_created_once_with_both_members() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).await.unwrap();
        let (app, a) = account(&s, 1).await;
        let (_, b) = account(&s, 2).await;
        let (app, low, high) = (app.get(), a.get().min(b.get()), a.get().max(b.get()));

        // Many first messages of the same pair at once, from either side.
        let tasks: Vec<_> = (0..16)
            .map(|n| {
                let s = s.clone();
                let owner = if n % 2 == 0 { low } else { high };
                tokio::spawn(async move {
                    let d = private(app, owner, 1000 + n);
                    let id = s.create_private_dialog(&d, low, high).await.unwrap();
                    let id = id.expect("both users exist");
                    (id, (id == d.id).then_some((d.id, d.created_at, d.owner_id)))
                })
            })
            .collect();
        let mut created = Vec::new();
        let mut ids = Vec::new();
        for t in tasks {
            let (id, fresh) = t.await.unwrap();
            ids.push(id);
            created.extend(fresh);
        }
        assert_eq!(created.len(), 1, "exactly one creation wins");
        let (winner, created_at, owner) = created[0];
        assert!(ids.iter().all(|id| *id == winner));
        assert_eq!(counts(&s).await, (1, 2));

        let row: (String, i64, i64, Option<String>, String, String, i64, i64) = sqlx::query_as(
            "SELECT id, type, owner_id, private_key, admins_ids, pinned_messages_ids, created_at, \
             updated_at FROM dialogs",
        )
        .fetch_one(s.pool())
        .await
        .unwrap();
        assert_eq!(
            row,
            (
                winner.to_string(),
                DialogType::Private as i64,
                owner,
                Some(format!("{low}:{high}")),
                String::new(),
                String::new(),
                created_at,
                created_at,
            )
        );
        let members: Vec<MemberRow> = sqlx::query_as(
            "SELECT user_id, occupant, hidden, unread_count, notifications, muted, cleared_before, \
             joined_at FROM dialog_members WHERE dialog_id = ? ORDER BY user_id",
        )
        .bind(winner.to_string())
        .fetch_all(s.pool())
        .await
        .unwrap();
        assert_eq!(
            members,
            vec![
                (low, 1, 0, 0, 1, 0, None, created_at),
                (high, 1, 0, 0, 1, 0, None, created_at),
            ]
        );
        assert_eq!(
            s.find_private_dialog(app, &format!("{low}:{high}"))
                .await
                .unwrap(),
            Some(winner)
        );

        // The REST path (`insert_dialog` with the key) finds the same dialog.
        let d = private(app, low, 5000);
        assert_eq!(
            s.insert_dialog(&d, Some(&format!("{low}:{high}")), &[low, high])
                .await
                .unwrap(),
            winner
        );
        assert_eq!(counts(&s).await, (1, 2));
    }

    #[tokio::test]
    async fn new_pairs_queued_together_are_created_in_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).await.unwrap();
        let mut users = Vec::new();
        for n in 0..10 {
            users.push(account(&s, n).await.1.get());
        }
        let app = account(&s, 99).await.0.get();
        let unknown = users[9] + 1000;
        // Five pairs (each asked for three times) and two pairs with an unknown user, all queued
        // while the write lock is held, so the writer takes them as one batch.
        let mut asks = Vec::new();
        for round in 0..3 {
            for p in 0..5 {
                asks.push((users[2 * p], users[2 * p + 1], round));
            }
            asks.push((users[0], unknown, round));
        }
        let write = s.write.lock().await;
        let tasks: Vec<_> = asks
            .iter()
            .map(|&(low, high, round)| {
                let s = s.clone();
                tokio::spawn(async move {
                    let d = private(app, low, round);
                    (
                        low,
                        high,
                        s.create_private_dialog(&d, low, high).await.unwrap(),
                    )
                })
            })
            .collect();
        tokio::task::yield_now().await;
        drop(write);
        let mut by_pair = std::collections::HashMap::new();
        for t in tasks {
            let (low, high, id) = t.await.unwrap();
            if high == unknown {
                assert_eq!(id, None, "a pair with an unknown user gets no dialog");
                continue;
            }
            let id = id.expect("both users exist");
            // Every ask of a pair gets the same dialog.
            assert_eq!(*by_pair.entry((low, high)).or_insert(id), id);
        }
        assert_eq!(by_pair.len(), 5);
        assert_eq!(counts(&s).await, (5, 10));
        for ((low, high), id) in by_pair {
            let members: Vec<i64> = sqlx::query_scalar(
                "SELECT user_id FROM dialog_members WHERE dialog_id = ? ORDER BY user_id",
            )
            .bind(id.to_string())
            .fetch_all(s.pool())
            .await
            .unwrap();
            assert_eq!(members, vec![low, high]);
            assert_eq!(
                s.find_private_dialog(app, &format!("{low}:{high}"))
                    .await
                    .unwrap(),
                Some(id)
            );
        }
    }

    #[tokio::test]
    async fn private_dialog_with_an_unknown_user_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).await.unwrap();
        let (app, a) = account(&s, 1).await;
        let (_, b) = account(&s, 2).await;
        let (app, a, b) = (app.get(), a.get(), b.get());
        let unknown = a.max(b) + 1000;
        let d = private(app, a, 1);
        assert_eq!(s.create_private_dialog(&d, a, unknown).await.unwrap(), None);
        // Users of another app do not count either.
        let other = s.create_app("o", "k2", "s2", b"h2", 1).await.unwrap();
        let d = private(other.id.get(), a, 1);
        let (low, high) = (a.min(b), a.max(b));
        assert_eq!(s.create_private_dialog(&d, low, high).await.unwrap(), None);
        assert_eq!(counts(&s).await, (0, 0));
    }
}
