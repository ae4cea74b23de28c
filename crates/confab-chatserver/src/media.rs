//! Pictures (spec §3.2, §4 #6–7): a user's photos and a group chat's images. Both are `MediaInfo`
//! rows whose `id` names uploads (`<id>.<type>`, `<id>-preview.<type>`); removing a picture
//! removes those uploads too, when the caller owns them.

use axum::body::Bytes;
use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::Json;
use confab_core::chat::DialogType;
use confab_core::clock::now_millis;
use confab_core::UserId;
use confab_service::chatserver::parse_uuid;
use confab_service::Media;
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Caller;
use crate::chats::{chat_for, render_chats};
use crate::error::{parse_json, CsError, CsResult};
use crate::render::{picture, Dates};
use crate::State;

const ID_MISSING: &str = "Media resource id is missing.";
const TYPE_OR_SIZE_MISSING: &str = "Media fileType or fileSize are missing.";
/// The original's default preview size of a photo or chat image.
const DEFAULT_PREVIEW: i64 = 100;
/// Longest `fileType`: it becomes a file extension.
const MAX_TYPE_CHARS: usize = 16;

/// A `MediaInfo` as a client sends it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MediaRequest {
    id: Option<String>,
    #[serde(default)]
    file_type: String,
    #[serde(default)]
    file_size: i64,
    preview_width: Option<i64>,
    preview_height: Option<i64>,
}

#[derive(Deserialize)]
struct PhotoBody {
    photo: MediaRequest,
}

#[derive(Deserialize)]
struct ImageBody {
    image: MediaRequest,
}

pub fn user_owner(user: UserId) -> String {
    format!("user:{user}")
}

pub fn chat_owner(uuid: &str) -> String {
    format!("chat:{uuid}")
}

/// The original's checks, in its order: an id (a UUID here), then a type and a size. The type
/// must also be a plain extension, since uploads are named with it.
fn checked(m: MediaRequest, app: confab_core::AppId, owner: String, by: UserId) -> CsResult<Media> {
    let id =
        m.id.as_deref()
            .and_then(parse_uuid)
            .ok_or_else(|| CsError::bad_request(ID_MISSING))?;
    let type_ok = !m.file_type.is_empty()
        && m.file_type.len() <= MAX_TYPE_CHARS
        && m.file_type.bytes().all(|b| b.is_ascii_alphanumeric());
    if !type_ok || m.file_size <= 0 {
        return Err(CsError::bad_request(TYPE_OR_SIZE_MISSING));
    }
    let preview = |v: Option<i64>| v.filter(|v| *v > 0).unwrap_or(DEFAULT_PREVIEW);
    Ok(Media {
        id,
        app_id: app,
        owner,
        added_by: by,
        file_type: m.file_type,
        file_size: m.file_size,
        preview_width: preview(m.preview_width),
        preview_height: preview(m.preview_height),
        created_at: now_millis(),
    })
}

async fn add(face: &State, media: &Media) -> CsResult<()> {
    if face.ids.add_media(media).await? {
        Ok(())
    } else {
        Err(CsError::new(
            StatusCode::CONFLICT,
            "Media resource id is already used.",
        ))
    }
}

/// A full `UserInfo` gets `about` and `photos`.
pub async fn complete_user_info(face: &State, user: UserId, info: &mut Value) -> CsResult<()> {
    let about = face.ids.about(face.app, user).await?;
    let photos: Vec<Value> = face
        .ids
        .media_of(face.app, &[user_owner(user)])
        .await?
        .iter()
        .map(|m| picture(m, Dates::Iso))
        .collect();
    if let Value::Object(o) = info {
        // Absent when unset: the original omits nil keys.
        if let Some(about) = about {
            o.insert("about".into(), Value::String(about));
        }
        o.insert("photos".into(), Value::Array(photos));
    }
    Ok(())
}

/// `POST /users/me/photos`: answers the caller's full `UserInfo`.
pub async fn add_photo(St(face): St<State>, caller: Caller, body: Bytes) -> CsResult<Json<Value>> {
    let req: PhotoBody = parse_json(&body)?;
    let media = checked(
        req.photo,
        face.app,
        user_owner(caller.user()),
        caller.user(),
    )?;
    add(&face, &media).await?;
    crate::users::full_user(&face, caller.user())
        .await
        .map(Json)
}

/// `DELETE /users/me/photos/<UUID>`: another user's photo is 403, an unknown one 404.
pub async fn delete_photo(
    St(face): St<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> CsResult<StatusCode> {
    remove(&face, &caller, &id, &user_owner(caller.user()), |m| {
        m.owner.starts_with("user:")
    })
    .await
}

/// Removes the picture `id` of `owner`. Pictures of the same kind (`same_kind`) owned by someone
/// else are 403, anything else 404. The uploads named after it go too.
async fn remove(
    face: &State,
    caller: &Caller,
    id: &str,
    owner: &str,
    same_kind: impl Fn(&Media) -> bool,
) -> CsResult<StatusCode> {
    let id = parse_uuid(id).ok_or_else(CsError::not_found)?;
    let media = match face.ids.media(face.app, &id).await? {
        Some(m) if m.owner == owner => m,
        // "Not yours" only for a picture of the same kind; anything else is unknown here.
        Some(m) if same_kind(&m) => return Err(CsError::forbidden("Forbidden")),
        _ => return Err(CsError::not_found()),
    };
    face.ids.delete_media(face.app, &media.id).await?;
    remove_files(face, caller.user(), &media).await;
    Ok(StatusCode::OK)
}

/// The uploads named after a picture, if `user` uploaded them.
async fn remove_files(face: &State, user: UserId, media: &Media) {
    remove_uploads_of(face, user, &media.id, &media.file_type).await;
}

/// The uploads named after a picture or an attachment (`<id>.<type>` and its preview
/// `<id>-preview.<type>`), if `user` uploaded them.
pub async fn remove_uploads_of(face: &State, user: UserId, id: &str, file_type: &str) {
    for name in [
        format!("{id}.{file_type}"),
        format!("{id}-preview.{file_type}"),
    ] {
        crate::uploads::remove_own(face, user, &name).await;
    }
}

/// A deleted group's images go with it, with its owner's uploads of their names.
pub async fn remove_chat_images(face: &State, owner: UserId, uuid: &str) -> CsResult<()> {
    for media in face.ids.media_of(face.app, &[chat_owner(uuid)]).await? {
        face.ids.delete_media(face.app, &media.id).await?;
        remove_files(face, owner, &media).await;
    }
    Ok(())
}

/// The group chat the caller owns, for changing its images: personal chats are 400, chats of
/// other owners 403.
async fn owned_group(face: &State, caller: &Caller, id: &str) -> CsResult<String> {
    let (uuid, view) = chat_for(face, caller.user(), id, CsError::forbidden("Forbidden")).await?;
    if view.dialog.kind == DialogType::Private {
        return Err(CsError::bad_request("You can't update personal chat."));
    }
    if view.dialog.owner_id != caller.user().get() {
        return Err(CsError::forbidden("Forbidden"));
    }
    Ok(uuid)
}

/// Tells the participants the chat changed (the original did not, though its document said so).
async fn tell(face: &State, caller: &Caller, id: &str) -> CsResult<Value> {
    let (uuid, view) = chat_for(face, caller.user(), id, CsError::forbidden("Forbidden")).await?;
    let chat = [(uuid, view)];
    let payload = render_chats(face, &chat, false, Dates::Apple)
        .await?
        .pop()
        .unwrap_or(Value::Null);
    crate::ws::notify_chat_info(
        face,
        chat[0].1.dialog.id,
        &chat[0].1.dialog.occupants_ids,
        "chatUpdate",
        &caller.user().to_string(),
        payload,
    )
    .await?;
    let mut out = render_chats(face, &chat, false, Dates::Iso).await?;
    let mut info = out.pop().unwrap_or(Value::Null);
    crate::flags::show_flags(face, caller.user(), &chat, std::slice::from_mut(&mut info)).await?;
    Ok(info)
}

/// `POST /chats/<uuid>/images`: the owner of a group adds a picture; answers the `ChatInfo`.
pub async fn add_image(
    St(face): St<State>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> CsResult<Json<Value>> {
    let req: ImageBody = parse_json(&body)?;
    let uuid = owned_group(&face, &caller, &id).await?;
    let media = checked(req.image, face.app, chat_owner(&uuid), caller.user())?;
    add(&face, &media).await?;
    tell(&face, &caller, &id).await.map(Json)
}

/// `DELETE /chats/<uuid>/images/<imageId>`: the owner of a group removes a picture.
pub async fn delete_image(
    St(face): St<State>,
    caller: Caller,
    Path((id, image)): Path<(String, String)>,
) -> CsResult<StatusCode> {
    let uuid = owned_group(&face, &caller, &id).await?;
    let status = remove(&face, &caller, &image, &chat_owner(&uuid), |_| false).await?;
    tell(&face, &caller, &id).await?;
    Ok(status)
}
