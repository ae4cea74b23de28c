//! Uploads and files (spec §6): `POST /uploads` streams a body into the blobs service the
//! ConnectyCube face uses (never whole in memory), and the stored file is served at
//! `/<name>.<type>` and `/files/<name>.<type>`. Unlike the original, an upload needs a Bearer
//! token, `File-Name` and the type are checked (no path characters reach a name; blobs are stored
//! under random uids anyway), a name another user uploaded cannot be replaced, and a missing type
//! is a 400, not a 500.

use axum::body::Body;
use axum::extract::{Path, State as St};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use confab_core::model::Session;
use confab_core::{AppId, ErrorKind, UserId};
use confab_service::blobs::DownloadBody;
use confab_service::chatserver::new_uuid;
use confab_service::{AuthContext, FileNaming};
use futures_util::StreamExt;
use tokio_util::io::ReaderStream;

use crate::auth::Caller;
use crate::error::{CsError, CsResult};
use crate::State;

/// The original's limit.
pub const MAX_UPLOAD_BYTES: u64 = 50_000_000;
const TOO_LARGE: &str = "Your upload exeeded max limit of 50Mb.";
const BAD_NAME: &str = "File name should consist of letters, digits, '-' and '_'.";
const NO_TYPE: &str = "Could not upload without file type.";
/// Longest `File-Name` (the stored name adds the type; the blobs service takes 100).
const MAX_NAME_CHARS: usize = 80;
const MAX_TYPE_CHARS: usize = 16;
const DOWNLOAD_CHUNK: usize = 64 * 1024;

/// The blobs service's view of a caller: its checks need only the app and the user. (Sessions of
/// this face are device sessions, not the ConnectyCube face's sessions; this one is never stored.)
fn context(app: AppId, user: Option<UserId>) -> AuthContext {
    AuthContext {
        session: Session {
            id: 0,
            app_id: app,
            user_id: user,
            created_at: 0,
            updated_at: 0,
            expires_at: i64::MAX,
        },
    }
}

/// `File-Name`: letters, digits, `-` and `_` only, so no path, no dot and no control character
/// ever becomes part of a name. Absent means a new UUID.
fn file_name(headers: &HeaderMap) -> CsResult<String> {
    let Some(v) = headers.get("file-name") else {
        return Ok(new_uuid());
    };
    let name = v
        .to_str()
        .map_err(|_| CsError::bad_request(BAD_NAME))?
        .trim();
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| name.to_string())
        .ok_or_else(|| CsError::bad_request(BAD_NAME))
}

/// The file type from `Content-Type`: the original's three named types, the subtype of any other
/// MIME type, or a bare extension (`png`); and the MIME type the file is served with.
fn file_type(headers: &HeaderMap) -> CsResult<(String, String)> {
    let raw = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|v| !v.is_empty())
        .ok_or_else(|| CsError::bad_request(NO_TYPE))?;
    let ext = match raw.as_str() {
        "image/jpeg" => "jpg".to_string(),
        "audio/mpeg" => "mp3".to_string(),
        "video/mp4" => "mp4".to_string(),
        // `type/subtype` gives the subtype; anything with more slashes is refused below.
        other => match other.split_once('/') {
            Some((_, sub)) => sub.to_string(),
            None => other.to_string(),
        },
    };
    let ok = !ext.is_empty()
        && ext.len() <= MAX_TYPE_CHARS
        && ext.bytes().all(|b| b.is_ascii_alphanumeric());
    if !ok {
        return Err(CsError::bad_request(
            "File type should consist of letters and digits.",
        ));
    }
    let mime = mime_of(&ext).to_string();
    Ok((ext, mime))
}

/// What a file is served as. Unknown types are bytes; the response also forbids sniffing.
fn mime_of(ext: &str) -> &'static str {
    match ext {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

fn too_large() -> CsError {
    CsError::new(StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE)
}

/// `POST /uploads`: answers the stored name, `<name>.<type>`, as plain text.
pub async fn upload(
    St(face): St<State>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> CsResult<Response> {
    let name = file_name(&headers)?;
    let (ext, mime) = file_type(&headers)?;
    let stored = format!("{name}.{ext}");
    let limit = MAX_UPLOAD_BYTES.min(face.blobs.max_bytes());
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let ctx = context(face.app, Some(caller.user()));
    // A name is its first uploader's: someone else's file is not replaced.
    if let Some(old) = face.ids.file_blob(face.app, &stored).await? {
        let blob = face.blobs.get(&ctx, &old.to_string()).await?;
        if blob.user_id != caller.user() {
            return Err(CsError::forbidden("This file belongs to another user."));
        }
    }
    // The bytes come through this server whatever the blob backend (with S3 they go on to the
    // bucket once received).
    let (blob, grant) = face
        .blobs
        .create_received(&ctx, &stored, &mime, true)
        .await?;
    let blob_key = blob.id.to_string();
    let received = receive(&face, blob.id, &grant, body, limit).await;
    if let Err(e) = received {
        // Nothing of a refused upload stays: its blob row goes (its partial file went on drop).
        if let Err(gone) = face.blobs.delete(&ctx, &blob_key).await {
            tracing::warn!(error = %gone, "could not remove a refused upload's blob");
        }
        return Err(e);
    }
    face.blobs.complete(&ctx, &blob_key).await?;
    let (gone, taken) = match face.ids.set_file_blob(face.app, &stored, blob.id).await? {
        FileNaming::Named(replaced) => (replaced.map(|b| b.to_string()), false),
        // Someone else named it while this upload ran: the name stays theirs.
        FileNaming::Taken => (Some(blob_key), true),
    };
    if let Some(gone) = gone {
        if let Err(e) = face.blobs.delete(&ctx, &gone).await {
            tracing::warn!(error = %e, "could not remove a replaced upload");
        }
    }
    if taken {
        return Err(CsError::forbidden("This file belongs to another user."));
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        stored,
    )
        .into_response())
}

/// Streams the body into the blob, chunk by chunk, refusing it past `limit`.
async fn receive(face: &State, blob: i64, token: &str, body: Body, limit: u64) -> CsResult<()> {
    let mut upload = face.blobs.begin_upload(blob, token).await?;
    let mut stream = body.into_data_stream();
    let mut written: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| CsError::bad_request("The upload was interrupted."))?;
        written += chunk.len() as u64;
        if written > limit {
            return Err(too_large());
        }
        upload.write(&chunk).await.map_err(|e| match e.kind {
            ErrorKind::TooLarge => too_large(),
            _ => e.into(),
        })?;
    }
    face.blobs.finish_upload(upload).await?;
    Ok(())
}

/// `GET /<name>.<type>` and `/files/<name>.<type>`: anyone may read, as in the original (its
/// clients show these in image views that send no token); names are the uploaders' UUIDs.
pub async fn serve(St(face): St<State>, Path(name): Path<String>) -> Response {
    match serve_named(&face, &name).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

pub async fn serve_named(face: &State, name: &str) -> CsResult<Response> {
    let blob = face
        .ids
        .file_blob(face.app, name)
        .await?
        .ok_or_else(CsError::not_found)?;
    let ctx = context(face.app, None);
    let blob = face.blobs.get(&ctx, &blob.to_string()).await?;
    let d = face.blobs.download(Some(face.app), &blob.uid).await?;
    let file = match d.body {
        DownloadBody::File(file) => file,
        DownloadBody::Redirect(url) => {
            return Ok(axum::response::Redirect::temporary(&url).into_response())
        }
    };
    let mut resp =
        Body::from_stream(ReaderStream::with_capacity(file, DOWNLOAD_CHUNK)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&d.blob.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Some(size) = d.blob.size {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    // Users' content: never run as a page of this origin.
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    Ok(resp)
}

/// Removes the caller's own upload of this name, if there is one (a picture's files when the
/// picture goes); failures are logged, the picture is gone either way.
pub async fn remove_own(face: &State, user: UserId, name: &str) {
    let ctx = context(face.app, Some(user));
    let Ok(Some(blob)) = face.ids.file_blob(face.app, name).await else {
        return;
    };
    match face.blobs.get(&ctx, &blob.to_string()).await {
        Ok(b) if b.user_id == user => {
            if let Err(e) = face.blobs.delete(&ctx, &blob.to_string()).await {
                tracing::warn!(error = %e, "could not remove a picture's upload");
            }
        }
        _ => {}
    }
}
