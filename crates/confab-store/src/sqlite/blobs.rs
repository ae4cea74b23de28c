//! [`BlobStore`] on SQLite.

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::{AppId, Error, Result, UserId};

use super::{db, SqliteStore};
use crate::blobs::*;

const COLUMNS: &str = "id, uid, app_id, user_id, name, content_type, public, size, \
     upload_expires_at, uploaded_at, completed_at, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct BlobRow {
    id: i64,
    uid: String,
    app_id: i64,
    user_id: i64,
    name: String,
    content_type: String,
    public: bool,
    size: Option<i64>,
    upload_expires_at: i64,
    uploaded_at: Option<i64>,
    completed_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<BlobRow> for Blob {
    type Error = Error;
    fn try_from(r: BlobRow) -> Result<Self> {
        Ok(Blob {
            id: r.id,
            uid: r.uid,
            app_id: AppId::new(r.app_id)?,
            user_id: UserId::new(r.user_id)?,
            name: r.name,
            content_type: r.content_type,
            public: r.public,
            size: r.size,
            upload_expires_at: r.upload_expires_at,
            uploaded_at: r.uploaded_at,
            completed_at: r.completed_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

fn one(row: Option<BlobRow>) -> Result<Option<Blob>> {
    row.map(Blob::try_from).transpose()
}

fn all(rows: Vec<BlobRow>) -> Result<Vec<Blob>> {
    rows.into_iter().map(Blob::try_from).collect()
}

impl SqliteStore {
    async fn blob_by_id(&self, id: i64) -> Result<Option<Blob>> {
        let sql = format!("SELECT {COLUMNS} FROM blobs WHERE id = ?");
        let row: Option<BlobRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(db)?;
        one(row)
    }

    /// Runs `update` (its leading binds done; `app_id` and `id` are bound last) under the write
    /// lock, then reads the blob back.
    async fn update_blob<'q>(
        &self,
        update: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
        app: AppId,
        id: i64,
    ) -> Result<Option<Blob>> {
        {
            let _write = self.write.lock().await;
            update
                .bind(app.get())
                .bind(id)
                .execute(self.pool())
                .await
                .map_err(db)?;
        }
        self.blob(app, id).await
    }
}

#[async_trait]
impl BlobStore for SqliteStore {
    async fn create_blob(&self, b: NewBlob) -> Result<Blob> {
        let _write = self.write.lock().await;
        let done = sqlx::query(
            "INSERT INTO blobs (uid, app_id, user_id, name, content_type, public,
                 upload_token_hash, upload_expires_at, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&b.uid)
        .bind(b.app_id.get())
        .bind(b.user_id.get())
        .bind(&b.name)
        .bind(&b.content_type)
        .bind(b.public)
        .bind(&b.upload_token_hash)
        .bind(b.upload_expires_at)
        .bind(b.now)
        .bind(b.now)
        .execute(self.pool())
        .await
        .map_err(db)?;
        self.blob_by_id(done.last_insert_rowid())
            .await?
            .ok_or_else(|| Error::internal(std::io::Error::other("inserted blob vanished")))
    }

    async fn blob(&self, app: AppId, id: i64) -> Result<Option<Blob>> {
        let sql = format!("SELECT {COLUMNS} FROM blobs WHERE app_id = ? AND id = ?");
        let row: Option<BlobRow> = sqlx::query_as(&sql)
            .bind(app.get())
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(db)?;
        one(row)
    }

    async fn blob_by_uid(&self, uid: &str) -> Result<Option<Blob>> {
        let sql = format!("SELECT {COLUMNS} FROM blobs WHERE uid = ?");
        let row: Option<BlobRow> = sqlx::query_as(&sql)
            .bind(uid)
            .fetch_optional(self.pool())
            .await
            .map_err(db)?;
        one(row)
    }

    async fn blob_for_upload(&self, id: i64) -> Result<Option<(Blob, Option<Vec<u8>>)>> {
        let Some(blob) = self.blob_by_id(id).await? else {
            return Ok(None);
        };
        let (hash,): (Option<Vec<u8>>,) =
            sqlx::query_as("SELECT upload_token_hash FROM blobs WHERE id = ?")
                .bind(id)
                .fetch_one(self.pool())
                .await
                .map_err(db)?;
        Ok(Some((blob, hash)))
    }

    async fn list_blobs(
        &self,
        app: AppId,
        user: UserId,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<Blob>, u64)> {
        let sql = format!(
            "SELECT {COLUMNS} FROM blobs WHERE app_id = ? AND user_id = ?
             ORDER BY id DESC LIMIT ? OFFSET ?"
        );
        let rows: Vec<BlobRow> = sqlx::query_as(&sql)
            .bind(app.get())
            .bind(user.get())
            .bind(i64::from(limit))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(self.pool())
            .await
            .map_err(db)?;
        let (total,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM blobs WHERE app_id = ? AND user_id = ?")
                .bind(app.get())
                .bind(user.get())
                .fetch_one(self.pool())
                .await
                .map_err(db)?;
        Ok((all(rows)?, total.max(0) as u64))
    }

    async fn mark_blob_uploaded(&self, id: i64, size: i64, now: Millis) -> Result<bool> {
        let _write = self.write.lock().await;
        let done = sqlx::query(
            "UPDATE blobs SET size = ?, uploaded_at = ?, updated_at = ?, upload_token_hash = NULL
             WHERE id = ? AND upload_token_hash IS NOT NULL",
        )
        .bind(size)
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn complete_blob(&self, app: AppId, id: i64, now: Millis) -> Result<Option<Blob>> {
        let update = sqlx::query(
            "UPDATE blobs SET completed_at = COALESCE(completed_at, ?), updated_at = ?
             WHERE app_id = ? AND id = ?",
        )
        .bind(now)
        .bind(now);
        self.update_blob(update, app, id).await
    }

    async fn rename_blob(
        &self,
        app: AppId,
        id: i64,
        name: &str,
        now: Millis,
    ) -> Result<Option<Blob>> {
        let update =
            sqlx::query("UPDATE blobs SET name = ?, updated_at = ? WHERE app_id = ? AND id = ?")
                .bind(name)
                .bind(now);
        self.update_blob(update, app, id).await
    }

    async fn delete_blob(&self, app: AppId, id: i64) -> Result<bool> {
        let _write = self.write.lock().await;
        let done = sqlx::query("DELETE FROM blobs WHERE app_id = ? AND id = ?")
            .bind(app.get())
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn incomplete_blobs(&self, before: Millis, limit: u32) -> Result<Vec<Blob>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM blobs WHERE completed_at IS NULL AND created_at < ?
             ORDER BY created_at LIMIT ?"
        );
        let rows: Vec<BlobRow> = sqlx::query_as(&sql)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(db)?;
        all(rows)
    }

    async fn user_blobs(&self, app: AppId, user: UserId) -> Result<Vec<Blob>> {
        let sql = format!("SELECT {COLUMNS} FROM blobs WHERE app_id = ? AND user_id = ?");
        let rows: Vec<BlobRow> = sqlx::query_as(&sql)
            .bind(app.get())
            .bind(user.get())
            .fetch_all(self.pool())
            .await
            .map_err(db)?;
        all(rows)
    }

    async fn app_blob_uids(&self, app: AppId) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT uid FROM blobs WHERE app_id = ?")
            .bind(app.get())
            .fetch_all(self.pool())
            .await
            .map_err(db)
    }
}
