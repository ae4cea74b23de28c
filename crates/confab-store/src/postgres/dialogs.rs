//! [`DialogStore`] on PostgreSQL.

use async_trait::async_trait;
use confab_core::chat::{Dialog, DialogType, MemberState};
use confab_core::clock::Millis;
use confab_core::query::Query;
use confab_core::{Error, ObjectId, Result};
use sqlx::{Postgres, QueryBuilder, Row};

use super::private_dialog_lookup::PairLookup;
use super::private_dialog_writer::{pair_key, PrivateDialogRow};
use super::rows::*;
use super::{db, lock_dialog, PgStore};
use crate::chat::{AdminDialogInfo, DialogStore, MemberChange, Membership, PostTarget, Viewer};

impl PgStore {
    /// Inserts private dialog `d` of users `low` and `high` (batched with concurrent ones) when
    /// both are users of its app. When nothing was inserted, the pair's existing dialog (one a
    /// concurrent transaction just committed included: `ON CONFLICT` waits for it), or `None`
    /// for an unknown user.
    async fn insert_private(&self, d: &Dialog, low: i64, high: i64) -> Result<Option<ObjectId>> {
        let row = PrivateDialogRow::new(d, low, high);
        let inserted = self.private_dialogs.write(row).await?;
        if inserted {
            return Ok(Some(d.id));
        }
        self.find_private_dialog(d.app_id, &pair_key(low, high))
            .await
    }

    /// Keeps `last_message*` pointing at the newest remaining message.
    pub(super) async fn refresh_last_message(
        tx: &mut sqlx::Transaction<'_, Postgres>,
        dialog: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE dialogs SET (last_message, last_message_date_sent, last_message_id, last_message_user_id) = \
             (SELECT body, date_sent, id, sender_id FROM messages WHERE dialog_id = $1 ORDER BY date_sent DESC, id DESC LIMIT 1) \
             WHERE id = $1",
        )
        .bind(dialog)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
        Ok(())
    }
}

#[async_trait]
impl DialogStore for PgStore {
    async fn insert_dialog(
        &self,
        d: &Dialog,
        private_key: Option<&str>,
        members: &[i64],
    ) -> Result<ObjectId> {
        if let Some(key) = private_key {
            // The members come from the key (see `private_dialog_writer`).
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
        // The dialog and its members in one statement; nothing when the id is taken.
        let inserted: Option<String> = sqlx::query_scalar(
            "WITH d AS (INSERT INTO dialogs (id, app_id, type, owner_id, name, description, photo, \
                 admins_ids, pinned_messages_ids, data, created_at, updated_at, extensions) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13::jsonb) \
                 ON CONFLICT DO NOTHING RETURNING id), \
             m AS (INSERT INTO dialog_members (dialog_id, user_id, occupant, joined_at) \
                 SELECT d.id, u, TRUE, $11 FROM d, (SELECT DISTINCT u FROM UNNEST($14::bigint[]) AS u) AS us \
                 ON CONFLICT DO NOTHING) \
             SELECT id FROM d",
        )
        .bind(d.id.to_string())
        .bind(d.app_id)
        .bind(d.kind as i64)
        .bind(d.owner_id)
        .bind(&d.name)
        .bind(&d.description)
        .bind(&d.photo)
        .bind(&d.admins_ids)
        .bind(&d.pinned_messages_ids)
        .bind(encode_object(&d.data))
        .bind(d.created_at)
        .bind(d.updated_at)
        .bind(encode_object(&d.extensions))
        .bind(members)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        if inserted.is_none() {
            return Err(Error::bad_request("duplicate dialog id"));
        }
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
        self.insert_private(d, low, high).await
    }

    async fn find_private_dialog(&self, app_id: i64, key: &str) -> Result<Option<ObjectId>> {
        self.private_dialog_lookups
            .write(PairLookup::new(app_id, key))
            .await
    }

    async fn dialog(&self, app_id: i64, id: ObjectId) -> Result<Option<Dialog>> {
        let row = sqlx::query(&format!(
            "SELECT {DIALOG_COLUMNS} FROM dialogs d WHERE d.id = $1 AND d.app_id = $2"
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
        // Every stored message asks this: one indexed read.
        let row: Option<(i64, i64, Vec<i64>, bool, Option<i64>)> = sqlx::query_as(
            "SELECT d.type, d.owner_id, d.admins_ids, \
             EXISTS (SELECT 1 FROM dialog_members WHERE dialog_id = d.id AND user_id = $1 AND occupant), \
             CASE WHEN d.type = 3 THEN (SELECT user_id FROM dialog_members WHERE dialog_id = d.id \
                 AND occupant AND user_id <> $1 ORDER BY user_id LIMIT 1) END \
             FROM dialogs d WHERE d.id = $2 AND d.app_id = $3",
        )
        .bind(user)
        .bind(dialog.to_string())
        .bind(app_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.map(
            |(kind, owner_id, admins_ids, member, other)| -> Result<PostTarget> {
                Ok(PostTarget {
                    kind: DialogType::from_i64(kind)?,
                    owner_id,
                    admins_ids,
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
             FROM dialog_members WHERE dialog_id = $1 AND user_id = $2",
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
        let from = |q: &mut QueryBuilder<'_, Postgres>| -> Result<()> {
            q.push(format!(
                " FROM dialogs d LEFT JOIN dialog_members mb ON mb.dialog_id = d.id AND mb.user_id = {user} \
                 WHERE d.app_id = {app_id}"
            ));
            if let Viewer::User(_) = viewer {
                q.push(
                    " AND ((d.type <> 1 AND mb.occupant AND NOT mb.hidden) \
                       OR (d.type = 1 AND NOT COALESCE(mb.hidden, FALSE)))",
                );
            }
            push_conditions(q, &query.conditions, false)
        };
        let mut count = QueryBuilder::<Postgres>::new("SELECT COUNT(*)");
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
        let mut q = QueryBuilder::<Postgres>::new(format!(
            "SELECT {DIALOG_COLUMNS}, COALESCE(mb.unread_count, CASE WHEN d.type = 1 THEN {} ELSE 0 END) AS unread, \
             COALESCE(mb.notifications, TRUE) AS notifications, COALESCE(mb.muted, FALSE) AS muted \
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
        let rows: Vec<(i64, bool, bool)> = sqlx::query_as(
            "SELECT user_id, muted, hidden FROM dialog_members WHERE dialog_id = $1 ORDER BY user_id",
        )
        .bind(dialog.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut info = AdminDialogInfo::default();
        for (user, muted, hidden) in rows {
            if muted {
                info.silent_ids.push(user);
            }
            if hidden {
                info.deleted_ids.push(user);
            }
        }
        Ok(info)
    }

    async fn save_dialog(&self, d: &Dialog) -> Result<()> {
        sqlx::query(
            "UPDATE dialogs SET name = $1, description = $2, photo = $3, admins_ids = $4, \
             pinned_messages_ids = $5, data = $6::jsonb, updated_at = $7, extensions = $8::jsonb \
             WHERE id = $9",
        )
        .bind(&d.name)
        .bind(&d.description)
        .bind(&d.photo)
        .bind(&d.admins_ids)
        .bind(&d.pinned_messages_ids)
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
        let mut users = users.to_vec();
        users.sort_unstable();
        users.dedup();
        let d = dialog.to_string();
        let mut tx = self.pool.begin().await.map_err(db)?;
        lock_dialog(&mut tx, &d).await?;
        sqlx::query(
            "INSERT INTO dialog_members (dialog_id, user_id, occupant, joined_at) \
             SELECT $1, u, TRUE, $3 FROM UNNEST($2::bigint[]) AS u \
             ON CONFLICT (dialog_id, user_id) DO UPDATE SET occupant = TRUE, hidden = FALSE",
        )
        .bind(&d)
        .bind(&users)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn remove_members(&self, dialog: ObjectId, users: &[i64]) -> Result<()> {
        let d = dialog.to_string();
        let mut tx = self.pool.begin().await.map_err(db)?;
        lock_dialog(&mut tx, &d).await?;
        sqlx::query("DELETE FROM dialog_members WHERE dialog_id = $1 AND user_id = ANY($2)")
            .bind(&d)
            .bind(users)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn set_member_state(
        &self,
        dialog: ObjectId,
        user: i64,
        change: MemberChange,
        now: Millis,
    ) -> Result<()> {
        // A reader without a row starts with what they have not read yet.
        let set = match change {
            MemberChange::Hidden(_) => "hidden = $3",
            MemberChange::Notifications(_) => "notifications = $3",
            MemberChange::Muted(_) => "muted = $3",
            // Clearing history also zeroes the unread count.
            MemberChange::ClearedBefore(_) => "cleared_before = $3, unread_count = 0",
        };
        let d = dialog.to_string();
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query(
            "INSERT INTO dialog_members (dialog_id, user_id, occupant, unread_count, joined_at) \
             VALUES ($1, $2, FALSE, (SELECT COUNT(*) FROM messages x WHERE x.dialog_id = $1 \
                 AND x.sender_id <> $2 AND NOT ($2 = ANY(x.read_ids))), $3) \
             ON CONFLICT (dialog_id, user_id) DO NOTHING",
        )
        .bind(&d)
        .bind(user)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let update =
            format!("UPDATE dialog_members SET {set} WHERE dialog_id = $1 AND user_id = $2");
        let q = sqlx::query(&update).bind(&d).bind(user);
        let q = match change {
            MemberChange::Hidden(v) | MemberChange::Notifications(v) | MemberChange::Muted(v) => {
                q.bind(v)
            }
            MemberChange::ClearedBefore(id) => q.bind(id.to_string()),
        };
        q.execute(&mut *tx).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn delete_dialog(&self, dialog: ObjectId) -> Result<()> {
        sqlx::query("DELETE FROM dialogs WHERE id = $1")
            .bind(dialog.to_string())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn members(&self, dialog: ObjectId, limit: u32, skip: u32) -> Result<(Vec<i64>, u64)> {
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM dialog_members WHERE dialog_id = $1 AND occupant",
        )
        .bind(dialog.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT user_id FROM dialog_members WHERE dialog_id = $1 AND occupant ORDER BY user_id LIMIT $2 OFFSET $3",
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
