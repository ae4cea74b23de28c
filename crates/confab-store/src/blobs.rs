//! Blob metadata (the SDK's storage module). The bytes are kept by the service's file backend;
//! this is the row that names them, who owns them, and the one-time upload grant.

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::{AppId, Result, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub id: i64,
    /// Random, never all digits, so a path segment tells it from an id.
    pub uid: String,
    pub app_id: AppId,
    pub user_id: UserId,
    pub name: String,
    pub content_type: String,
    pub public: bool,
    /// Bytes received; `None` until uploaded.
    pub size: Option<i64>,
    pub upload_expires_at: Millis,
    pub uploaded_at: Option<Millis>,
    pub completed_at: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A blob row about to be inserted.
#[derive(Debug, Clone)]
pub struct NewBlob {
    pub app_id: AppId,
    pub user_id: UserId,
    pub uid: String,
    pub name: String,
    pub content_type: String,
    pub public: bool,
    pub upload_token_hash: Vec<u8>,
    pub upload_expires_at: Millis,
    pub now: Millis,
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    async fn create_blob(&self, blob: NewBlob) -> Result<Blob>;
    async fn blob(&self, app: AppId, id: i64) -> Result<Option<Blob>>;
    /// Any app's blob by uid (public downloads carry no token); callers check the app.
    async fn blob_by_uid(&self, uid: &str) -> Result<Option<Blob>>;
    /// Any app's blob by id, for the upload endpoint, which the upload token authorises.
    async fn blob_for_upload(&self, id: i64) -> Result<Option<(Blob, Option<Vec<u8>>)>>;
    /// One owner's blobs, newest first: `(page, total)`.
    async fn list_blobs(
        &self,
        app: AppId,
        user: UserId,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<Blob>, u64)>;
    /// Records the received bytes and spends the upload grant; `false` when the grant was already
    /// spent (a concurrent upload won).
    async fn mark_blob_uploaded(&self, id: i64, size: i64, now: Millis) -> Result<bool>;
    async fn complete_blob(&self, app: AppId, id: i64, now: Millis) -> Result<Option<Blob>>;
    async fn rename_blob(
        &self,
        app: AppId,
        id: i64,
        name: &str,
        now: Millis,
    ) -> Result<Option<Blob>>;
    async fn delete_blob(&self, app: AppId, id: i64) -> Result<bool>;
    /// Blobs never completed that were created before `before` (oldest first, at most `limit`).
    async fn incomplete_blobs(&self, before: Millis, limit: u32) -> Result<Vec<Blob>>;
    /// Every blob of one user (to remove their files before the user goes).
    async fn user_blobs(&self, app: AppId, user: UserId) -> Result<Vec<Blob>>;
    /// The uids of every blob of one app (to remove their bytes when the app goes).
    async fn app_blob_uids(&self, app: AppId) -> Result<Vec<String>>;
}
