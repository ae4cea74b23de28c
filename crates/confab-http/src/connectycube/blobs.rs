//! Blobs (the SDK's storage module): create, upload, complete, info, list, rename, delete and
//! download. With the filesystem backend the upload URL is confab's own `/blobs/upload`, with
//! the blob id and its one-time upload grant as the query fields the SDK turns into form fields;
//! with S3 it is the bucket's presigned POST, and downloads redirect to a presigned GET.

use axum::body::Body as HttpBody;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use confab_core::clock::to_iso;
use confab_core::{AppId, Error};
use confab_service::blobs::{Blob, DownloadBody, UploadAccess};
use serde_json::{json, Value};
use tokio_util::io::ReaderStream;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Body, TOKEN_HEADER};
use crate::params::Params;
use crate::AppState;

const DEFAULT_PAGE: u32 = 10;
const MAX_PAGE: u32 = 100;
/// Form fields besides `file` are short (an id, a timestamp, a token).
const MAX_FIELD_BYTES: usize = 1024;
const MAX_FIELDS: usize = 16;
/// Bytes read from a blob file per chunk of a download: large reads keep file I/O (a thread
/// hand-off per read) off the profile.
const DOWNLOAD_CHUNK: usize = 256 * 1024;

fn render(b: &Blob) -> Value {
    json!({
        "id": b.id,
        "uid": b.uid,
        "content_type": b.content_type,
        "name": b.name,
        "size": b.size,
        "public": b.public,
        "blob_status": if b.completed_at.is_some() { Value::from("complete") } else { Value::Null },
        "set_completed_at": b.completed_at.map(to_iso),
        "created_at": to_iso(b.created_at),
        "updated_at": to_iso(b.updated_at),
    })
}

fn one(b: &Blob) -> Json<Value> {
    Json(json!({ "blob": render(b) }))
}

/// Where clients reach this server: the configured public URL, else the request's `Host`.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|c| c.is_ascii_graphic()))
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// The upload URL. This server's own: values are hex and digits, so nothing needs
/// percent-encoding; a presigned one comes encoded.
fn upload_url(base: &str, blob: &Blob, upload: &UploadAccess) -> String {
    match upload {
        UploadAccess::Local { upload_token } => format!(
            "{base}/blobs/upload?blob_id={}&expires={}&upload_token={upload_token}",
            blob.id, blob.upload_expires_at
        ),
        UploadAccess::Presigned { url } => url.clone(),
    }
}

/// POST /blobs
pub async fn create_blob(
    State(s): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let b = p.object("blob")?.unwrap_or_default();
    let name = b.text("name").unwrap_or_default();
    let content_type = b.text("content_type").unwrap_or_default();
    let public = b.flag("public");
    let created = s
        .blobs
        .create(&auth.ctx, &name, &content_type, public)
        .await?;
    let mut v = render(&created.blob);
    v["blob_object_access"] = json!({
        "id": created.blob.id,
        "blob_id": created.blob.id,
        "expires": to_iso(created.blob.upload_expires_at),
        "object_access_type": "Write",
        "params": upload_url(&base_url(&s, &headers), &created.blob, &created.upload),
    });
    Ok(Json(json!({ "blob": v })))
}

/// GET /blobs
pub async fn list_blobs(
    State(s): State<AppState>,
    auth: Auth,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let page = p.bounded("current_page", 1, u32::MAX)?.max(1);
    let per_page = match p.bounded("per_page", DEFAULT_PAGE, MAX_PAGE)? {
        0 => DEFAULT_PAGE,
        n => n,
    };
    let (blobs, total) = s.blobs.list(&auth.ctx, page, per_page).await?;
    Ok(Json(json!({
        "current_page": page,
        "per_page": per_page,
        "total_entries": total,
        "items": blobs.iter().map(|b| json!({"blob": render(b)})).collect::<Vec<_>>(),
    })))
}

/// GET /blobs/{id or uid}: info; with `blob[name]` a rename (the SDK's `storage.update` sends
/// its update as a GET).
pub async fn get_blob(
    State(s): State<AppState>,
    auth: Auth,
    Path(key): Path<String>,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    if let Some(name) = p.object("blob")?.and_then(|b| b.text("name")) {
        return Ok(one(&s.blobs.rename(&auth.ctx, &key, &name).await?));
    }
    Ok(one(&s.blobs.get(&auth.ctx, &key).await?))
}

/// PUT /blobs/{id} `{"blob":{"name"}}`
pub async fn update_blob(
    State(s): State<AppState>,
    auth: Auth,
    Path(key): Path<String>,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let name = p
        .object("blob")?
        .and_then(|b| b.text("name"))
        .ok_or_else(|| Error::invalid("name", "can't be blank"))?;
    Ok(one(&s.blobs.rename(&auth.ctx, &key, &name).await?))
}

/// GET /blobs/{uid}/object
pub async fn get_blob_object(
    State(s): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    let blob = s.blobs.get(&auth.ctx, &key).await?;
    let mut v = render(&blob);
    v["blob_object_access"] = json!({
        "id": blob.id,
        "blob_id": blob.id,
        "object_access_type": "Read",
        "params": format!("{}/blobs/{}", base_url(&s, &headers), blob.uid),
    });
    Ok(Json(json!({ "blob": v })))
}

/// PUT /blobs/{id}/complete `{"size":N}`: the size kept is what arrived.
pub async fn complete_blob(
    State(s): State<AppState>,
    auth: Auth,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    s.blobs.complete(&auth.ctx, &key).await?;
    Ok(StatusCode::OK)
}

/// DELETE /blobs/{id}
pub async fn delete_blob(
    State(s): State<AppState>,
    auth: Auth,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    s.blobs.delete(&auth.ctx, &key).await?;
    Ok(StatusCode::OK)
}

/// A short text form field, read with a bound.
async fn small_field(field: &mut Field<'_>) -> ApiResult<String> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
        buf.extend_from_slice(&chunk);
        if buf.len() > MAX_FIELD_BYTES {
            return Err(Error::bad_request("A form field is too long").into());
        }
    }
    String::from_utf8(buf).map_err(|_| Error::bad_request("A form field is not UTF-8").into())
}

fn bad_form(e: axum::extract::multipart::MultipartError) -> ApiError {
    Error::bad_request(format!("Malformed multipart body: {}", e.body_text())).into()
}

/// POST /blobs/upload: multipart fields `blob_id`, `upload_token` (from the upload URL), then
/// `file`, streamed to disk under the size limit.
pub async fn upload_blob(
    State(s): State<AppState>,
    form: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut form = form.map_err(|e| Error::bad_request(e.body_text()))?;
    let mut fields = Params::default();
    let mut count = 0;
    while let Some(mut field) = form.next_field().await.map_err(bad_form)? {
        let name = field.name().unwrap_or_default().to_string();
        if name != "file" {
            count += 1;
            if count > MAX_FIELDS {
                return Err(Error::bad_request("Too many form fields").into());
            }
            let value = small_field(&mut field).await?;
            fields.0.insert(name, Value::String(value));
            continue;
        }
        let refused = || Error::forbidden("The upload grant is missing");
        let id = fields.int("blob_id")?.ok_or_else(refused)?;
        let token = fields.text("upload_token").ok_or_else(refused)?;
        let mut upload = s.blobs.begin_upload(id, &token).await?;
        while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
            upload.write(&chunk).await?;
        }
        let blob = s.blobs.finish_upload(upload).await?;
        return Ok((StatusCode::CREATED, one(&blob)));
    }
    Err(Error::invalid("file", "can't be blank").into())
}

/// The app of the session a download names (`?token=` or `CB-Token`), if it is valid. An
/// invalid token is no token: a public blob is still served.
async fn caller_app(s: &AppState, headers: &HeaderMap, query: Option<&str>) -> Option<AppId> {
    let from_query = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    let token = from_query.or_else(|| {
        headers
            .get(TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    })?;
    s.accounts
        .authenticate(token.trim())
        .await
        .ok()
        .map(|c| c.app())
}

/// GET /blobs/{uid}/download (and `/blobs/{uid}` without `.json`, which the router rewrites).
pub async fn download_blob(
    State(s): State<AppState>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    let app = caller_app(&s, &headers, uri.query()).await;
    let d = s.blobs.download(app, &uid).await?;
    let file = match d.body {
        DownloadBody::File(file) => file,
        DownloadBody::Redirect(url) => return Ok(Redirect::temporary(&url).into_response()),
    };
    let content_type = HeaderValue::from_str(&d.blob.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let mut resp =
        HttpBody::from_stream(ReaderStream::with_capacity(file, DOWNLOAD_CHUNK)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    if let Some(size) = d.blob.size {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    // Uploaded content is the users' own: never let it run as a page of this origin.
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
