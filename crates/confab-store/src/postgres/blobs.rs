//! [`BlobStore`] on PostgreSQL.

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::{AppId, Error, Result, UserId};

use super::{db, PgStore};
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

#[async_trait]
impl BlobStore for PgStore {
    async fn create_blob(&self, b: NewBlob) -> Result<Blob> {
        let row: BlobRow = sqlx::query_as(&format!(
            "INSERT INTO blobs (uid, app_id, user_id, name, content_type, public, \
                 upload_token_hash, upload_expires_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING {COLUMNS}"
        ))
        .bind(&b.uid)
        .bind(b.app_id.get())
        .bind(b.user_id.get())
        .bind(&b.name)
        .bind(&b.content_type)
        .bind(b.public)
        .bind(&b.upload_token_hash)
        .bind(b.upload_expires_at)
        .bind(b.now)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        row.try_into()
    }

    async fn blob(&self, app: AppId, id: i64) -> Result<Option<Blob>> {
        let row: Option<BlobRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM blobs WHERE app_id = $1 AND id = $2"
        ))
        .bind(app.get())
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        one(row)
    }

    async fn blob_by_uid(&self, uid: &str) -> Result<Option<Blob>> {
        let row: Option<BlobRow> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM blobs WHERE uid = $1"))
                .bind(uid)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        one(row)
    }

    async fn blob_for_upload(&self, id: i64) -> Result<Option<(Blob, Option<Vec<u8>>)>> {
        #[derive(sqlx::FromRow)]
        struct WithGrant {
            #[sqlx(flatten)]
            blob: BlobRow,
            upload_token_hash: Option<Vec<u8>>,
        }
        let row: Option<WithGrant> = sqlx::query_as(&format!(
            "SELECT {COLUMNS}, upload_token_hash FROM blobs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.map(|r| Ok((Blob::try_from(r.blob)?, r.upload_token_hash)))
            .transpose()
    }

    async fn list_blobs(
        &self,
        app: AppId,
        user: UserId,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<Blob>, u64)> {
        let rows: Vec<BlobRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM blobs WHERE app_id = $1 AND user_id = $2 \
             ORDER BY id DESC LIMIT $3 OFFSET $4"
        ))
        .bind(app.get())
        .bind(user.get())
        .bind(i64::from(limit))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM blobs WHERE app_id = $1 AND user_id = $2")
                .bind(app.get())
                .bind(user.get())
                .fetch_one(&self.pool)
                .await
                .map_err(db)?;
        Ok((all(rows)?, total.max(0) as u64))
    }

    async fn mark_blob_uploaded(&self, id: i64, size: i64, now: Millis) -> Result<bool> {
        // A concurrent upload waits on the row, then finds the grant spent.
        let done = sqlx::query(
            "UPDATE blobs SET size = $1, uploaded_at = $2, updated_at = $2, upload_token_hash = NULL \
             WHERE id = $3 AND upload_token_hash IS NOT NULL",
        )
        .bind(size)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn complete_blob(&self, app: AppId, id: i64, now: Millis) -> Result<Option<Blob>> {
        let row: Option<BlobRow> = sqlx::query_as(&format!(
            "UPDATE blobs SET completed_at = COALESCE(completed_at, $1), updated_at = $1 \
             WHERE app_id = $2 AND id = $3 RETURNING {COLUMNS}"
        ))
        .bind(now)
        .bind(app.get())
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        one(row)
    }

    async fn rename_blob(
        &self,
        app: AppId,
        id: i64,
        name: &str,
        now: Millis,
    ) -> Result<Option<Blob>> {
        let row: Option<BlobRow> = sqlx::query_as(&format!(
            "UPDATE blobs SET name = $1, updated_at = $2 WHERE app_id = $3 AND id = $4 \
             RETURNING {COLUMNS}"
        ))
        .bind(name)
        .bind(now)
        .bind(app.get())
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        one(row)
    }

    async fn delete_blob(&self, app: AppId, id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM blobs WHERE app_id = $1 AND id = $2")
            .bind(app.get())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn incomplete_blobs(&self, before: Millis, limit: u32) -> Result<Vec<Blob>> {
        let rows: Vec<BlobRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM blobs WHERE completed_at IS NULL AND created_at < $1 \
             ORDER BY created_at LIMIT $2"
        ))
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        all(rows)
    }

    async fn user_blobs(&self, app: AppId, user: UserId) -> Result<Vec<Blob>> {
        let rows: Vec<BlobRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM blobs WHERE app_id = $1 AND user_id = $2"
        ))
        .bind(app.get())
        .bind(user.get())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        all(rows)
    }

    async fn app_blob_uids(&self, app: AppId) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT uid FROM blobs WHERE app_id = $1")
            .bind(app.get())
            .fetch_all(&self.pool)
            .await
            .map_err(db)
    }
}
