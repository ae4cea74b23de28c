//! The filesystem backend: each blob's bytes are one file named after its uid under the blob
//! directory; uploads stream into a temporary file in `tmp/` that is renamed into place only
//! when complete, so a refused or broken upload leaves nothing behind.

use std::io;
use std::path::PathBuf;

use std::io::Write;

use bytes::Bytes;
use confab_core::{Error, ErrorKind, Result};
use tokio::sync::{mpsc, Semaphore};

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
        let syncer = std::sync::Arc::new(file.try_clone().map_err(Error::internal)?);
        let (chunks, queued) = mpsc::channel(QUEUED_CHUNKS);
        let room = std::sync::Arc::new(Semaphore::new(IN_FLIGHT));
        let writer = {
            let room = room.clone();
            tokio::task::spawn_blocking(move || write_chunks(file, queued, &room))
        };
        Ok(TempUpload {
            path: temp.into_temp_path(),
            chunks: Some(chunks),
            room,
            writer: Some(writer),
            written: 0,
            max_bytes,
            syncer,
            syncing: None,
            synced_at: 0,
        })
    }

    /// Moves a finished upload into place as `uid`'s file.
    pub async fn persist(&self, upload: TempUpload, uid: &str) -> Result<()> {
        let TempUpload { path, .. } = upload;
        let target = self.path(uid);
        tokio::task::spawn_blocking(move || path.persist(&target).map_err(|e| e.error))
            .await
            .map_err(Error::internal)?
            .map_err(Error::internal)
    }
}

/// Bytes being received; the file is deleted when this is dropped unfinished.
///
/// The received chunks go as they are (no copy) to one blocking thread that writes them, while
/// the next ones arrive: at most [`IN_FLIGHT`] bytes wait for it, so memory stays flat.
pub struct TempUpload {
    path: tempfile::TempPath,
    /// To the writer thread; `None` once finished.
    chunks: Option<mpsc::Sender<(Bytes, u32)>>,
    /// Bytes the writer may still be handed, as permits.
    room: std::sync::Arc<Semaphore>,
    writer: Option<tokio::task::JoinHandle<io::Result<()>>>,
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
/// Bytes received but not yet written, per upload.
const IN_FLIGHT: usize = 4 * 1024 * 1024;
/// Chunks the writer may be behind by (each holds permits for its bytes too).
const QUEUED_CHUNKS: usize = 64;
/// Chunks written with one system call.
const CHUNKS_PER_WRITE: usize = 16;

/// The writer thread: writes chunks in arrival order, several per system call when they queue.
fn write_chunks(
    mut file: std::fs::File,
    mut queued: mpsc::Receiver<(Bytes, u32)>,
    room: &Semaphore,
) -> io::Result<()> {
    let mut batch: Vec<(Bytes, u32)> = Vec::with_capacity(CHUNKS_PER_WRITE);
    while let Some(first) = queued.blocking_recv() {
        batch.push(first);
        while batch.len() < CHUNKS_PER_WRITE {
            match queued.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut slices: Vec<io::IoSlice<'_>> =
            batch.iter().map(|(c, _)| io::IoSlice::new(c)).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            let n = file.write_vectored(rest)?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            io::IoSlice::advance_slices(&mut rest, n);
        }
        room.add_permits(batch.drain(..).map(|(_, p)| p as usize).sum());
    }
    Ok(())
}

impl TempUpload {
    /// Appends a chunk; past the size limit the upload is refused (and its file goes on drop).
    pub async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.written += chunk.len() as u64;
        if self.written > self.max_bytes {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!("File is larger than {} bytes", self.max_bytes),
            ));
        }
        if chunk.is_empty() {
            return Ok(());
        }
        // A chunk larger than the room takes all of it.
        let permits = chunk.len().min(IN_FLIGHT) as u32;
        self.room
            .acquire_many(permits)
            .await
            .map_err(Error::internal)?
            .forget();
        let sent = match &self.chunks {
            Some(chunks) => chunks.send((chunk, permits)).await.is_ok(),
            None => false,
        };
        if !sent {
            // The writer stopped: its error says why.
            return Err(self.stop_writer().await.err().unwrap_or_else(|| {
                Error::internal(io::Error::other("the upload's writer stopped"))
            }));
        }
        let idle = self.syncing.as_ref().is_none_or(|s| s.is_finished());
        if idle && self.written - self.synced_at >= SYNC_EVERY {
            let file = self.syncer.clone();
            self.syncing = Some(tokio::task::spawn_blocking(move || file.sync_data()));
            self.synced_at = self.written;
        }
        Ok(())
    }

    /// Closes the writer's queue and waits until it has written everything.
    async fn stop_writer(&mut self) -> Result<()> {
        self.chunks = None;
        match self.writer.take() {
            Some(writer) => writer
                .await
                .map_err(Error::internal)?
                .map_err(Error::internal),
            None => Ok(()),
        }
    }

    /// Where the bytes are.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Flushes to disk; returns the size.
    pub async fn finish(&mut self) -> Result<u64> {
        self.stop_writer().await?;
        if let Some(running) = self.syncing.take() {
            running
                .await
                .map_err(Error::internal)?
                .map_err(Error::internal)?;
        }
        let file = self.syncer.clone();
        tokio::task::spawn_blocking(move || file.sync_all())
            .await
            .map_err(Error::internal)?
            .map_err(Error::internal)?;
        Ok(self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> (tempfile::TempDir, BlobFiles) {
        let dir = tempfile::tempdir().unwrap();
        let files = BlobFiles::open(dir.path().join("blobs")).unwrap();
        (dir, files)
    }

    fn temp_entries(files: &BlobFiles) -> usize {
        std::fs::read_dir(files.dir.join("tmp")).unwrap().count()
    }

    #[tokio::test]
    async fn chunks_of_every_size_land_in_order() {
        let (_dir, files) = files();
        let mut upload = files.begin(64 * 1024 * 1024).await.unwrap();
        // Empty, tiny, exactly the room, larger than the room, and many small ones in a row.
        let mut sizes = vec![0, 1, 7, IN_FLIGHT, IN_FLIGHT + 1, 3 * IN_FLIGHT];
        sizes.extend((0..500).map(|i| 100 + i * 37 % 4096));
        let mut expected = Vec::new();
        for (n, size) in sizes.into_iter().enumerate() {
            let chunk: Vec<u8> = (0..size).map(|i| (i * 7 + n) as u8).collect();
            expected.extend_from_slice(&chunk);
            upload.write(Bytes::from(chunk)).await.unwrap();
        }
        assert_eq!(upload.finish().await.unwrap(), expected.len() as u64);
        files.persist(upload, "abc").await.unwrap();
        assert_eq!(std::fs::read(files.path("abc")).unwrap(), expected);
        assert_eq!(temp_entries(&files), 0);
    }

    #[tokio::test]
    async fn past_the_limit_is_refused_and_leaves_nothing() {
        let (_dir, files) = files();
        let mut upload = files.begin(10).await.unwrap();
        upload
            .write(Bytes::from_static(b"0123456789"))
            .await
            .unwrap();
        let refused = upload.write(Bytes::from_static(b"x")).await.unwrap_err();
        assert_eq!(refused.kind, ErrorKind::TooLarge);
        drop(upload);
        assert_eq!(temp_entries(&files), 0);
    }
}
