//! The filesystem backend: each blob's bytes are one file named after its uid under the blob
//! directory; uploads stream into a temporary file in `tmp/` that is renamed into place only
//! when complete, so a refused or broken upload leaves nothing behind.

use std::io;
use std::path::PathBuf;

use confab_core::{Error, ErrorKind, Result};
use tokio::io::{AsyncWriteExt, BufWriter};

/// Bytes gathered before a write to the file: multipart chunks are small, and every file write is
/// a hand-off to a blocking thread.
const WRITE_BUFFER: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct BlobFiles {
    dir: PathBuf,
}

impl BlobFiles {
    /// Creates the directories. Temporary files are left alone: another process (a serving one,
    /// while `confab app create` runs) may be streaming into them.
    pub fn open(dir: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(dir.join("tmp")).map_err(Error::internal)?;
        Ok(Self { dir })
    }

    /// Removes the temporary files of uploads a previous run left unfinished. Only the serving
    /// process calls this, before it accepts uploads.
    pub fn clear_temp(&self) -> Result<()> {
        let tmp = self.dir.join("tmp");
        std::fs::remove_dir_all(&tmp).map_err(Error::internal)?;
        std::fs::create_dir_all(&tmp).map_err(Error::internal)
    }

    /// Uids are random hex made by the service, never client text, so they are safe file names.
    fn path(&self, uid: &str) -> PathBuf {
        self.dir.join(uid)
    }

    pub async fn open_file(&self, uid: &str) -> Result<Option<tokio::fs::File>> {
        match tokio::fs::File::open(self.path(uid)).await {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::internal(e)),
        }
    }

    /// Removes a blob's file; a missing one is fine (never uploaded).
    pub async fn remove(&self, uid: &str) -> Result<()> {
        match tokio::fs::remove_file(self.path(uid)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::internal(e)),
        }
    }

    /// A temporary file for one upload, holding at most `max_bytes`.
    pub async fn begin(&self, max_bytes: u64) -> Result<TempUpload> {
        let temp = tempfile::Builder::new()
            .prefix("upload-")
            .tempfile_in(self.dir.join("tmp"))
            .map_err(Error::internal)?;
        let file = temp.reopen().map_err(Error::internal)?;
        let syncer = file.try_clone().map_err(Error::internal)?;
        Ok(TempUpload {
            path: temp.into_temp_path(),
            file: BufWriter::with_capacity(WRITE_BUFFER, tokio::fs::File::from_std(file)),
            written: 0,
            max_bytes,
            syncer: std::sync::Arc::new(syncer),
            syncing: None,
            synced_at: 0,
        })
    }

    /// Moves a finished upload into place as `uid`'s file.
    pub async fn persist(&self, upload: TempUpload, uid: &str) -> Result<()> {
        let TempUpload { path, file, .. } = upload;
        drop(file);
        let target = self.path(uid);
        tokio::task::spawn_blocking(move || path.persist(&target).map_err(|e| e.error))
            .await
            .map_err(Error::internal)?
            .map_err(Error::internal)
    }
}

/// Bytes being received; the file is deleted when this is dropped unfinished.
pub struct TempUpload {
    path: tempfile::TempPath,
    file: BufWriter<tokio::fs::File>,
    written: u64,
    max_bytes: u64,
    /// The same file, for data syncs that run while the upload goes on: the disk writes the
    /// first megabytes while the next arrive, and the last sync has little left to do.
    syncer: std::sync::Arc<std::fs::File>,
    syncing: Option<tokio::task::JoinHandle<io::Result<()>>>,
    synced_at: u64,
}

/// Bytes written between two background data syncs of an upload.
const SYNC_EVERY: u64 = 8 * 1024 * 1024;

impl TempUpload {
    /// Appends a chunk; past the size limit the upload is refused (and its file goes on drop).
    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.written += chunk.len() as u64;
        if self.written > self.max_bytes {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!("File is larger than {} bytes", self.max_bytes),
            ));
        }
        self.file.write_all(chunk).await.map_err(Error::internal)?;
        let idle = self.syncing.as_ref().is_none_or(|s| s.is_finished());
        if idle && self.written - self.synced_at >= SYNC_EVERY {
            self.file.flush().await.map_err(Error::internal)?;
            let file = self.syncer.clone();
            self.syncing = Some(tokio::task::spawn_blocking(move || file.sync_data()));
            self.synced_at = self.written;
        }
        Ok(())
    }

    /// Where the bytes are.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Flushes to disk; returns the size.
    pub async fn finish(&mut self) -> Result<u64> {
        self.file.flush().await.map_err(Error::internal)?;
        if let Some(running) = self.syncing.take() {
            running
                .await
                .map_err(Error::internal)?
                .map_err(Error::internal)?;
        }
        self.file
            .get_ref()
            .sync_all()
            .await
            .map_err(Error::internal)?;
        Ok(self.written)
    }
}
