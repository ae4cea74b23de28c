//! Stored messages, written in batches (see `group_commit`): concurrent inserts share one
//! statement in one transaction, and the triggers of migration 0300 update the dialog and the
//! unread counts.

use std::collections::HashSet;

use async_trait::async_trait;
use confab_core::chat::Message;
use confab_core::{Error, Result};
use serde_json::Value;
use sqlx::{QueryBuilder, Sqlite, Transaction};

use super::db;
use super::group_commit::{is_constraint, BatchWrite, GroupCommit};
use super::rows::encode_ids;

/// A message encoded for its row, so the writer only binds.
pub(crate) struct MessageRow {
    id: String,
    dialog_id: String,
    app_id: i64,
    sender_id: i64,
    recipient_id: i64,
    body: Option<String>,
    date_sent: i64,
    attachments: String,
    attachment_types: String,
    custom: Option<String>,
    read_ids: String,
    delivered_ids: String,
    markable: bool,
    created_at: i64,
    updated_at: i64,
}

impl MessageRow {
    pub(crate) fn new(m: &Message) -> Self {
        let types: Vec<String> = m
            .attachments
            .iter()
            .filter_map(|a| a.get("type").and_then(Value::as_str).map(str::to_string))
            .collect();
        Self {
            id: m.id.to_string(),
            dialog_id: m.dialog_id.to_string(),
            app_id: m.app_id,
            sender_id: m.sender_id,
            recipient_id: m.recipient_id,
            body: m.body.clone(),
            date_sent: m.date_sent,
            attachments: Value::Array(m.attachments.clone()).to_string(),
            attachment_types: encode_ids(&types),
            custom: (!m.custom.is_empty()).then(|| Value::Object(m.custom.clone()).to_string()),
            read_ids: encode_ids(&m.read_ids),
            delivered_ids: encode_ids(&m.delivered_ids),
            markable: m.markable,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// Stored messages: rows inserted with one statement per batch.
pub(crate) struct MessageBatch;

pub(crate) type MessageWriter = GroupCommit<MessageBatch>;

#[async_trait]
impl BatchWrite for MessageBatch {
    type Row = MessageRow;
    type Out = ();
    const NAME: &'static str = "message";

    /// A row that breaks a constraint fails alone.
    async fn write(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        rows: &[MessageRow],
    ) -> std::result::Result<Vec<Result<()>>, sqlx::Error> {
        match insert_rows(tx, rows).await {
            Ok(results) => Ok(results),
            // The statement failed as a whole and left nothing behind: row by row, the bad row
            // fails alone.
            Err(e) if is_constraint(&e) => {
                let mut results = Vec::with_capacity(rows.len());
                for row in rows {
                    results.push(match insert_rows(tx, std::slice::from_ref(row)).await {
                        Ok(mut one) => one.pop().expect("one result per row"),
                        Err(e) if is_constraint(&e) => Err(db(e)),
                        Err(e) => return Err(e),
                    });
                }
                Ok(results)
            }
            Err(e) => Err(e),
        }
    }
}

/// Inserts the rows with one statement (one trip to the driver's thread); rows keep their order.
/// Per row: stored, or the id was taken already (also by an earlier row of the same batch).
async fn insert_rows(
    tx: &mut Transaction<'_, Sqlite>,
    batch: &[MessageRow],
) -> std::result::Result<Vec<Result<()>>, sqlx::Error> {
    let mut q = QueryBuilder::<sqlx::Sqlite>::new(
        "INSERT INTO messages (id, dialog_id, app_id, sender_id, recipient_id, body, date_sent, \
         attachments, attachment_types, custom, read_ids, delivered_ids, markable, created_at, updated_at) ",
    );
    q.push_values(batch, |mut b, m| {
        b.push_bind(&m.id)
            .push_bind(&m.dialog_id)
            .push_bind(m.app_id)
            .push_bind(m.sender_id)
            .push_bind(m.recipient_id)
            .push_bind(&m.body)
            .push_bind(m.date_sent)
            .push_bind(&m.attachments)
            .push_bind(&m.attachment_types)
            .push_bind(&m.custom)
            .push_bind(&m.read_ids)
            .push_bind(&m.delivered_ids)
            .push_bind(m.markable)
            .push_bind(m.created_at)
            .push_bind(m.updated_at);
    });
    q.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
    // Not kept prepared: the text differs with every batch size.
    let inserted: Vec<String> = q
        .build_query_scalar()
        .persistent(false)
        .fetch_all(&mut **tx)
        .await?;
    let mut inserted: HashSet<String> = inserted.into_iter().collect();
    Ok(batch
        .iter()
        .map(|m| {
            if inserted.remove(&m.id) {
                Ok(())
            } else {
                // A client retry: storing the message once is enough.
                Err(Error::invalid("_id", "has already been taken"))
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use confab_core::chat::{Dialog, DialogType, Message};
    use confab_core::query::Query;
    use confab_core::{ErrorKind, ObjectId};
    use serde_json::Map;

    use crate::chat::{DialogStore, MessageSearch, MessageStore};
    use crate::sqlite::privacy::tests::account;
    use crate::sqlite::SqliteStore;

    async fn private_dialog(s: &SqliteStore, app: i64, a: i64, b: i64) -> ObjectId {
        let d = Dialog {
            id: ObjectId::generate(),
            app_id: app,
            kind: DialogType::Private,
            owner_id: a,
            name: None,
            description: None,
            photo: None,
            occupants_ids: vec![a, b],
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
            created_at: 1,
            updated_at: 1,
        };
        s.insert_dialog(&d, Some(&format!("{a}:{b}")), &[a, b])
            .await
            .unwrap()
    }

    fn message(app: i64, dialog: ObjectId, sender: i64, body: &str) -> Message {
        Message {
            id: ObjectId::generate(),
            app_id: app,
            dialog_id: dialog,
            sender_id: sender,
            recipient_id: 0,
            body: Some(body.to_string()),
            date_sent: 1_700_000_000,
            attachments: Vec::new(),
            custom: Map::new(),
            read_ids: vec![sender],
            delivered_ids: vec![sender],
            deleted_for_ids: Vec::new(),
            reactions: Map::new(),
            markable: false,
            views_count: 0,
            edited_at: None,
            created_at: 2,
            updated_at: 2,
        }
    }

    /// Inserts every message from its own task, all at once, so they queue for one writer.
    async fn insert_concurrently(
        s: &SqliteStore,
        messages: &[Message],
    ) -> Vec<confab_core::Result<()>> {
        let tasks: Vec<_> = messages
            .iter()
            .cloned()
            .map(|m| {
                let s = s.clone();
                tokio::spawn(async move { s.insert_message(&m).await })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        results
    }

    async fn unread(s: &SqliteStore, app: i64, user: i64, dialog: ObjectId) -> i64 {
        let counts = s.unread_counts(app, user, Some(&[dialog])).await.unwrap();
        counts.first().map_or(0, |c| c.1)
    }

    async fn bodies(s: &SqliteStore, dialog: ObjectId) -> Vec<String> {
        let query = Query {
            limit: 1000,
            ..Default::default()
        };
        let (items, _) = s
            .list_messages(dialog, None, None, &query, false)
            .await
            .unwrap();
        items.into_iter().filter_map(|m| m.body).collect()
    }

    #[tokio::test]
    async fn concurrent_messages_all_land_in_order_with_exact_counts() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).await.unwrap();
        let (app, _) = account(&s, 1).await;
        let app = app.get();
        // Users 2 to 4: private dialogs are only created between existing users.
        for n in 2..=4 {
            account(&s, n).await;
        }
        let (ab, cd) = (
            private_dialog(&s, app, 1, 2).await,
            private_dialog(&s, app, 3, 4).await,
        );
        // 300 messages over two dialogs: more than one batch, both senders in each dialog.
        let messages: Vec<Message> = (0..300)
            .map(|i| {
                let (dialog, sender) = match i % 4 {
                    0 => (ab, 1),
                    1 => (ab, 2),
                    2 => (cd, 3),
                    _ => (cd, 4),
                };
                message(app, dialog, sender, &format!("word{i} hello"))
            })
            .collect();
        let results = insert_concurrently(&s, &messages).await;
        assert!(results.iter().all(Result::is_ok));

        let expect = |d: ObjectId| -> Vec<String> {
            messages
                .iter()
                .filter(|m| m.dialog_id == d)
                .filter_map(|m| m.body.clone())
                .collect()
        };
        assert_eq!(bodies(&s, ab).await, expect(ab));
        assert_eq!(bodies(&s, cd).await, expect(cd));
        // Each user has unread exactly what the other sent; senders' own messages do not count.
        for user in [1, 2] {
            assert_eq!(unread(&s, app, user, ab).await, 75);
        }
        for user in [3, 4] {
            assert_eq!(unread(&s, app, user, cd).await, 75);
        }
        let last = s.dialog(app, cd).await.unwrap().unwrap();
        let newest = messages.iter().rfind(|m| m.dialog_id == cd).unwrap();
        assert_eq!(last.last_message_id, Some(newest.id.to_string()));
        assert_eq!(last.last_message, newest.body);
        assert_eq!(last.last_message_user_id, Some(newest.sender_id));

        let found = s
            .search_messages(&MessageSearch {
                app_id: app,
                user_id: 1,
                terms: vec!["word8".into()],
                dialog_ids: None,
                date_from: None,
                date_to: None,
                limit: 10,
            })
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, messages[8].id);
    }

    #[tokio::test]
    async fn a_failing_message_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).await.unwrap();
        let (app, _) = account(&s, 1).await;
        let app = app.get();
        // Users 2 to 4: private dialogs are only created between existing users.
        for n in 2..=4 {
            account(&s, n).await;
        }
        let ab = private_dialog(&s, app, 1, 2).await;
        let first = message(app, ab, 1, "first");
        s.insert_message(&first).await.unwrap();

        let mut batch: Vec<Message> = (0..20)
            .map(|i| message(app, ab, 1, &format!("m{i}")))
            .collect();
        // A retried id and a message for a dialog that does not exist, amid good ones.
        let mut retry = first.clone();
        retry.body = Some("retried".into());
        batch.insert(5, retry);
        batch.insert(10, message(app, ObjectId::generate(), 1, "nowhere"));
        let results = insert_concurrently(&s, &batch).await;

        let dup = results[5].as_ref().unwrap_err();
        assert!(dup.kind == ErrorKind::Invalid && dup.fields.contains_key("_id"));
        assert!(results[10].is_err());
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 20);

        let mut expect = vec!["first".to_string()];
        expect.extend((0..20).map(|i| format!("m{i}")));
        assert_eq!(bodies(&s, ab).await, expect);
        assert_eq!(unread(&s, app, 2, ab).await, 21);
        assert_eq!(unread(&s, app, 1, ab).await, 0);
        let d = s.dialog(app, ab).await.unwrap().unwrap();
        assert_eq!(d.last_message.as_deref(), Some("m19"));
    }

    #[tokio::test]
    async fn retried_ids_are_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).await.unwrap();
        let (app, _) = account(&s, 1).await;
        let app = app.get();
        // Users 2 to 4: private dialogs are only created between existing users.
        for n in 2..=4 {
            account(&s, n).await;
        }
        let ab = private_dialog(&s, app, 1, 2).await;
        let old = message(app, ab, 1, "old");
        s.insert_message(&old).await.unwrap();
        let new = message(app, ab, 1, "new");
        // An earlier message again, and a new one twice in the same batch.
        let batch = [old.clone(), new.clone(), message(app, ab, 1, "other"), new];
        let results = insert_concurrently(&s, &batch).await;
        let taken = |r: &confab_core::Result<()>| matches!(r, Err(e) if e.kind == ErrorKind::Invalid && e.fields.contains_key("_id"));
        assert!(taken(&results[0]));
        assert!(results[1].is_ok() && results[2].is_ok());
        assert!(taken(&results[3]));
        assert_eq!(bodies(&s, ab).await, ["old", "new", "other"]);
        assert_eq!(unread(&s, app, 2, ab).await, 3);
    }
}
