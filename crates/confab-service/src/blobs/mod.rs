//! Blobs (the SDK's storage module) and their rules: only the owner renames, completes or
//! deletes; another app's blobs do not exist; private bytes need a session of the same app,
//! public ones nothing. Uploads are authorised by a one-time grant issued at creation, not by a
//! session (a browser's cross-origin upload may not carry one).

pub mod files;
pub mod s3;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use confab_core::clock::now_millis;
use confab_core::{AppId, Error, Result, UserId};
pub use confab_store::Blob;
use confab_store::{BlobStore, NewBlob};

use self::s3::{S3Blobs, S3Config};
use crate::secrets::{random_hex, token_hash};
use crate::AuthContext;
use files::{BlobFiles, TempUpload};

/// Longest blob name (ConnectyCube's).
pub const MAX_NAME_CHARS: usize = 100;
const MAX_CONTENT_TYPE_CHARS: usize = 255;
/// Blobs removed per sweep query.
const SWEEP_BATCH: u32 = 100;

#[derive(Debug, Clone)]
pub struct BlobsConfig {
    /// Where the files live (`<data dir>/blobs`), unless they are kept in S3.
    pub dir: PathBuf,
    /// Keep the bytes in this S3 bucket instead of `dir`.
    pub s3: Option<S3Config>,
    /// Largest upload.
    pub max_bytes: u64,
    /// A blob not completed this long after its creation is removed; its upload grant expires
    /// with it.
    pub incomplete_ttl: Duration,
}

/// A new blob and how its bytes are uploaded.
pub struct Created {
    pub blob: Blob,
    pub upload: UploadAccess,
}

pub enum UploadAccess {
    /// To this server's upload route, with this one-time grant.
    Local { upload_token: String },
    /// To this URL (a presigned S3 POST: the query carries the form fields).
    Presigned { url: String },
}

/// A blob and where its bytes come from, for a download.
pub struct Download {
    pub blob: Blob,
    pub body: DownloadBody,
}

pub enum DownloadBody {
    File(tokio::fs::File),
    /// A short-lived URL that serves the bytes (a presigned S3 GET).
    Redirect(String),
}

/// Where the bytes live. The rules stay in [`Blobs`]; a backend only stores.
enum Backend {
    Files(BlobFiles),
    /// Objects in S3; `spool` holds the temporary files of the uploads this server receives itself
    /// (the ChatServer face's) on their way to the bucket.
    S3 {
        s3: S3Blobs,
        spool: BlobFiles,
    },
}

impl Backend {
    async fn remove(&self, uid: &str) -> Result<()> {
        match self {
            Self::Files(f) => f.remove(uid).await,
            Self::S3 { s3, .. } => s3.remove(uid).await,
        }
    }

    /// Where received bytes are written while they arrive.
    fn temp_files(&self) -> &BlobFiles {
        match self {
            Self::Files(files) | Self::S3 { spool: files, .. } => files,
        }
    }
}

/// An upload that passed its grant check and streams into a temporary file.
pub struct Upload {
    blob: Blob,
    temp: TempUpload,
}

impl Upload {
    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.temp.write(chunk).await
    }
}

pub struct Blobs {
    store: Arc<dyn BlobStore>,
    backend: Backend,
    config: BlobsConfig,
}

fn not_found() -> Error {
    Error::not_found("Blob not found")
}

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::invalid("name", "can't be blank"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::invalid(
            "name",
            format!("is too long (maximum is {MAX_NAME_CHARS} characters)"),
        ));
    }
    Ok(())
}

/// A MIME type: `type/subtype` with an optional `; parameter`, printable ASCII only.
fn check_content_type(ct: &str) -> Result<()> {
    if ct.trim().is_empty() {
        return Err(Error::invalid("content_type", "can't be blank"));
    }
    let essence = ct.split(';').next().unwrap_or("").trim();
    let valid = ct.len() <= MAX_CONTENT_TYPE_CHARS
        && ct.bytes().all(|b| (0x20..0x7f).contains(&b))
        && matches!(essence.split_once('/'), Some((t, s))
            if !t.is_empty() && !s.is_empty() && !essence.contains(' ') && !s.contains('/'));
    if valid {
        Ok(())
    } else {
        Err(Error::invalid("content_type", "is invalid"))
    }
}

/// A random uid that is never all digits, so `/blobs/<x>` tells a uid from an id.
fn new_uid() -> String {
    loop {
        let uid = random_hex(16);
        if !uid.bytes().all(|b| b.is_ascii_digit()) {
            return uid;
        }
    }
}

impl Blobs {
    pub fn new(store: Arc<dyn BlobStore>, config: BlobsConfig) -> Result<Self> {
        let backend = match &config.s3 {
            Some(s3) => Backend::S3 {
                s3: S3Blobs::open(s3)?,
                spool: BlobFiles::open(config.dir.join("spool"))?,
            },
            None => Backend::Files(BlobFiles::open(config.dir.clone())?),
        };
        Ok(Self {
            store,
            backend,
            config,
        })
    }

    pub fn max_bytes(&self) -> u64 {
        self.config.max_bytes
    }

    pub async fn create(
        &self,
        ctx: &AuthContext,
        name: &str,
        content_type: &str,
        public: bool,
    ) -> Result<Created> {
        let (blob, upload_token) = self.create_row(ctx, name, content_type, public).await?;
        let upload = match &self.backend {
            Backend::Files(_) => UploadAccess::Local { upload_token },
            Backend::S3 { s3, .. } => {
                // The policy ends no later than the blob's upload time (whole seconds, rounded
                // down), so nothing lands in the bucket after the sweep has removed the blob.
                let left = (blob.upload_expires_at - now_millis()).max(0) as u64;
                let url = s3
                    .upload_url(
                        &blob.uid,
                        &blob.content_type,
                        self.config.max_bytes,
                        Duration::from_millis(left),
                    )
                    .await?;
                UploadAccess::Presigned { url }
            }
        };
        Ok(Created { blob, upload })
    }

    /// A blob whose bytes this server receives itself whatever the backend (the ChatServer face's
    /// uploads), with its one-time grant for [`begin_upload`](Self::begin_upload).
    pub async fn create_received(
        &self,
        ctx: &AuthContext,
        name: &str,
        content_type: &str,
        public: bool,
    ) -> Result<(Blob, String)> {
        self.create_row(ctx, name, content_type, public).await
    }

    /// The blob's row and its upload grant. With S3 the grant is never handed to a client: the
    /// presigned POST takes its place.
    async fn create_row(
        &self,
        ctx: &AuthContext,
        name: &str,
        content_type: &str,
        public: bool,
    ) -> Result<(Blob, String)> {
        let user = ctx.user()?;
        check_name(name)?;
        check_content_type(content_type)?;
        let now = now_millis();
        let upload_token = random_hex(20);
        let blob = self
            .store
            .create_blob(NewBlob {
                app_id: ctx.app(),
                user_id: user,
                uid: new_uid(),
                name: name.trim().to_string(),
                content_type: content_type.trim().to_string(),
                public,
                upload_token_hash: token_hash(&upload_token),
                upload_expires_at: now + self.config.incomplete_ttl.as_millis() as i64,
                now,
            })
            .await?;
        Ok((blob, upload_token))
    }

    /// By numeric id or by uid, within the caller's app.
    pub async fn get(&self, ctx: &AuthContext, key: &str) -> Result<Blob> {
        let found = match key.parse::<i64>() {
            Ok(id) => self.store.blob(ctx.app(), id).await?,
            Err(_) => self
                .store
                .blob_by_uid(key)
                .await?
                .filter(|b| b.app_id == ctx.app()),
        };
        found.ok_or_else(not_found)
    }

    /// The caller's own blob, for changes: another app's is unknown, another user's forbidden.
    async fn owned(&self, ctx: &AuthContext, key: &str) -> Result<Blob> {
        let user = ctx.user()?;
        let blob = self.get(ctx, key).await?;
        if blob.user_id != user {
            return Err(Error::forbidden("Only the owner may change this blob"));
        }
        Ok(blob)
    }

    /// The caller's blobs, newest first: `(page, total)`; `page` counts from 1.
    pub async fn list(
        &self,
        ctx: &AuthContext,
        page: u32,
        per_page: u32,
    ) -> Result<(Vec<Blob>, u64)> {
        let user = ctx.user()?;
        let offset = u64::from(page.max(1) - 1) * u64::from(per_page);
        self.store
            .list_blobs(ctx.app(), user, offset, per_page)
            .await
    }

    pub async fn rename(&self, ctx: &AuthContext, key: &str, name: &str) -> Result<Blob> {
        let blob = self.owned(ctx, key).await?;
        check_name(name)?;
        self.store
            .rename_blob(ctx.app(), blob.id, name.trim(), now_millis())
            .await?
            .ok_or_else(not_found)
    }

    /// Marks an uploaded blob complete; its size is what arrived, whatever the client claims.
    pub async fn complete(&self, ctx: &AuthContext, key: &str) -> Result<Blob> {
        let blob = self.owned(ctx, key).await?;
        if blob.uploaded_at.is_none() {
            self.note_s3_upload(&blob).await?;
        }
        self.store
            .complete_blob(ctx.app(), blob.id, now_millis())
            .await?
            .ok_or_else(not_found)
    }

    /// With S3 this server never sees the upload: the object's presence (and size) in the
    /// bucket is what marks the blob uploaded.
    async fn note_s3_upload(&self, blob: &Blob) -> Result<()> {
        let not_uploaded = || Error::invalid("base", "The file was not uploaded");
        let Backend::S3 { s3, .. } = &self.backend else {
            return Err(not_uploaded());
        };
        let size = s3.size(&blob.uid).await?.ok_or_else(not_uploaded)?;
        let size = i64::try_from(size).map_err(Error::internal)?;
        self.store
            .mark_blob_uploaded(blob.id, size, now_millis())
            .await?;
        Ok(())
    }

    pub async fn delete(&self, ctx: &AuthContext, key: &str) -> Result<()> {
        let blob = self.owned(ctx, key).await?;
        self.remove(&blob).await
    }

    /// The file goes first: a failure leaves the row, so the blob can be deleted again.
    async fn remove(&self, blob: &Blob) -> Result<()> {
        self.backend.remove(&blob.uid).await?;
        self.store.delete_blob(blob.app_id, blob.id).await?;
        Ok(())
    }

    /// Checks an upload grant and opens the temporary file the bytes stream into.
    pub async fn begin_upload(&self, blob_id: i64, token: &str) -> Result<Upload> {
        let (blob, hash) = self
            .store
            .blob_for_upload(blob_id)
            .await?
            .ok_or_else(not_found)?;
        let refused = || Error::forbidden("The upload grant is invalid, used or expired");
        let hash = hash.ok_or_else(refused)?;
        if hash != token_hash(token) || blob.upload_expires_at < now_millis() {
            return Err(refused());
        }
        let temp = self
            .backend
            .temp_files()
            .begin(self.config.max_bytes)
            .await?;
        Ok(Upload { blob, temp })
    }

    /// Keeps a received upload: spends the grant, then moves the file into place (with S3: sends
    /// it to the bucket first, and takes it back out if the grant is no longer good).
    pub async fn finish_upload(&self, mut upload: Upload) -> Result<Blob> {
        let size = upload.temp.finish().await?;
        let size = i64::try_from(size).map_err(Error::internal)?;
        let uid = upload.blob.uid.clone();
        if let Backend::S3 { s3, .. } = &self.backend {
            s3.put_file(&uid, upload.temp.path(), &upload.blob.content_type)
                .await?;
        }
        if !self
            .store
            .mark_blob_uploaded(upload.blob.id, size, now_millis())
            .await?
        {
            if let Backend::S3 { s3, .. } = &self.backend {
                s3.remove(&uid).await?;
            }
            return Err(Error::forbidden(
                "The upload grant is invalid, used or expired",
            ));
        }
        if let Backend::Files(files) = &self.backend {
            files.persist(upload.temp, &uid).await?;
        }
        let mut blob = upload.blob;
        blob.size = Some(size);
        Ok(blob)
    }

    /// A completed blob's bytes. `caller` is the app of the session that asks, if any: private
    /// blobs need one of the blob's app.
    pub async fn download(&self, caller: Option<AppId>, uid: &str) -> Result<Download> {
        let blob = self.store.blob_by_uid(uid).await?.ok_or_else(not_found)?;
        if !blob.public {
            match caller {
                None => return Err(Error::no_session()),
                Some(app) if app != blob.app_id => return Err(not_found()),
                Some(_) => {}
            }
        }
        if blob.completed_at.is_none() {
            return Err(Error::not_found("The blob is not uploaded yet"));
        }
        let body = match &self.backend {
            Backend::Files(files) => {
                DownloadBody::File(files.open_file(&blob.uid).await?.ok_or_else(not_found)?)
            }
            Backend::S3 { s3, .. } => DownloadBody::Redirect(s3.download_url(&blob.uid).await?),
        };
        Ok(Download { blob, body })
    }

    /// Removes the partial files of uploads a previous run was streaming when it stopped. Call it
    /// once in the serving process, before it accepts uploads.
    pub fn clear_unfinished_uploads(&self) -> Result<()> {
        self.backend.temp_files().clear_temp()
    }

    /// Removes blobs created more than the configured time ago and never completed; returns how
    /// many.
    pub async fn purge_incomplete(&self) -> Result<u64> {
        let before = now_millis() - self.config.incomplete_ttl.as_millis() as i64;
        let mut removed = 0;
        loop {
            let stale = self.store.incomplete_blobs(before, SWEEP_BATCH).await?;
            for blob in &stale {
                self.remove(blob).await?;
                removed += 1;
            }
            if stale.len() < SWEEP_BATCH as usize {
                return Ok(removed);
            }
        }
    }

    /// The uids of a user's blob files, read before the user (and with them the rows) is deleted.
    pub(crate) async fn user_files(&self, app: AppId, user: UserId) -> Result<Vec<String>> {
        let blobs = self.store.user_blobs(app, user).await?;
        Ok(blobs.into_iter().map(|b| b.uid).collect())
    }

    /// The uids of an app's blobs, read before the app (and with it the rows) is deleted.
    pub(crate) async fn app_files(&self, app: AppId) -> Result<Vec<String>> {
        self.store.app_blob_uids(app).await
    }

    /// Removes files whose rows are already gone; a failure leaves an orphan file, logged.
    pub(crate) async fn remove_files(&self, uids: &[String]) {
        for uid in uids {
            if let Err(e) = self.backend.remove(uid).await {
                tracing::warn!(error = %e, "could not remove a deleted blob's bytes");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        for ok in [
            "image/png",
            "application/octet-stream",
            "text/plain; charset=utf-8",
        ] {
            assert!(check_content_type(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "png",
            "image/",
            "/png",
            "image/png/x",
            "im age/png",
            "a/b\n",
        ] {
            assert!(check_content_type(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names() {
        assert!(check_name("a.png").is_ok());
        assert!(check_name(" ").is_err());
        assert!(check_name(&"x".repeat(MAX_NAME_CHARS)).is_ok());
        assert!(check_name(&"x".repeat(MAX_NAME_CHARS + 1)).is_err());
    }

    #[test]
    fn uids_are_never_numbers() {
        for _ in 0..100 {
            assert!(new_uid().parse::<i64>().is_err());
        }
    }
}
