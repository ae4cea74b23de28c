//! Chats (spec §4): create (deduplicated by participant set), list, get. A personal chat is the
//! private dialog (type 3) of its two users, a group chat a group dialog (type 2); the chat's UUID
//! is stored beside the dialog, given the first time this face shows it.

use std::collections::{BTreeSet, HashMap};

use axum::body::Bytes;
use axum::extract::{Path, Query, State as St};
use axum::http::StatusCode;
use axum::Json;
use confab_core::chat::{DialogType, Message};
use confab_core::model::{User, UserQuery};
use confab_core::query::{Condition, Field, Op, Query as ChatQuery, Scalar};
use confab_core::{DialogId, ErrorKind, ObjectId, UserId};
use confab_service::chat::{Actor, DialogUpdate, DialogView, NewDialog};
use confab_service::ChatKey;
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Caller;
use crate::error::{parse_json, CsError, CsResult};
use crate::render::{chat_info, ChatParts, Dates};
use crate::State;

/// Most chats one `GET /chats` lists.
const MAX_LISTED: u32 = 1000;
/// Longest generated title of an untitled group (the domain needs a name for groups).
const MAX_GENERATED_TITLE: usize = 200;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateChat {
    title: Option<String>,
    participants: Vec<i64>,
    is_personal: Option<bool>,
}

/// The chat a path names, as a dialog the caller takes part in: 404 for an unknown or malformed
/// id, `not_member` when the chat exists but the caller is not in it.
pub async fn chat_for(
    face: &State,
    caller: UserId,
    uuid: &str,
    not_member: CsError,
) -> CsResult<(String, DialogView)> {
    let dialog = face
        .ids
        .dialog_of(face.app, uuid)
        .await?
        .ok_or_else(CsError::not_found)?;
    let view = match face
        .chat
        .dialog_for(face.app, Actor::User(caller.get()), DialogId::from(dialog))
        .await
    {
        Ok(v) => v,
        Err(e) if e.kind == ErrorKind::NotFound => return Err(not_member),
        Err(e) => return Err(e.into()),
    };
    if !is_chat(&view) {
        return Err(CsError::not_found());
    }
    let uuid = face.ids.chat_uuid(face.app, dialog).await?;
    Ok((uuid, view))
}

/// Only private and group dialogs are chats on this face.
fn is_chat(v: &DialogView) -> bool {
    matches!(v.dialog.kind, DialogType::Private | DialogType::Group)
}

/// Users by id, for owners and participants.
pub(crate) async fn users(face: &State, ids: &BTreeSet<i64>) -> CsResult<HashMap<i64, User>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let q = UserQuery {
        ids: Some(ids.iter().copied().collect()),
        limit: ids.len() as u32,
        ..Default::default()
    };
    let (list, _) = face.accounts.list_users(face.app, &q).await?;
    Ok(list.into_iter().map(|u| (u.id, u)).collect())
}

/// `ChatInfo`s of the views (UUIDs given beside them), with `allUsers` when `full`.
pub async fn render_chats(
    face: &State,
    chats: &[(String, DialogView)],
    full: bool,
    dates: Dates,
) -> CsResult<Vec<Value>> {
    let mut ids = BTreeSet::new();
    let mut last: Vec<ObjectId> = Vec::new();
    for (_, v) in chats {
        ids.insert(v.dialog.owner_id);
        if full {
            ids.extend(v.dialog.occupants_ids.iter().copied());
        }
        if let Some(m) = v
            .dialog
            .last_message_id
            .as_deref()
            .and_then(|m| m.parse().ok())
        {
            last.push(m);
        }
    }
    let people = users(face, &ids).await?;
    let mut owners: Vec<String> = chats
        .iter()
        .map(|(uuid, _)| crate::media::chat_owner(uuid))
        .collect();
    // The full info shows the participants' photos too.
    if full {
        owners.extend(
            people
                .keys()
                .filter_map(|id| UserId::new(*id).ok())
                .map(crate::media::user_owner),
        );
    }
    let pictures = face.ids.media_of(face.app, &owners).await?;
    let numbers: HashMap<ObjectId, i64> = face
        .ids
        .message_numbers(face.app, &last)
        .await?
        .into_iter()
        .zip(last.iter())
        .map(|(n, m)| (*m, n))
        .collect();
    Ok(chats
        .iter()
        .map(|(uuid, v)| {
            let last_number = v
                .dialog
                .last_message_id
                .as_deref()
                .and_then(|m| m.parse::<ObjectId>().ok())
                .and_then(|m| numbers.get(&m).copied());
            let all_users = full.then(|| {
                v.dialog
                    .occupants_ids
                    .iter()
                    .filter_map(|id| people.get(id))
                    .collect()
            });
            let owner = crate::media::chat_owner(uuid);
            let images: Vec<Value> = pictures
                .iter()
                .filter(|m| m.owner == owner)
                .map(|m| crate::render::picture(m, dates))
                .collect();
            let mut info = chat_info(
                &ChatParts {
                    uuid,
                    dialog: &v.dialog,
                    state: &v.state,
                    owner: people.get(&v.dialog.owner_id),
                    all_users,
                    last_number,
                    images,
                },
                dates,
            );
            if let Some(Value::Array(all)) = info.get_mut("allUsers") {
                for u in all.iter_mut() {
                    let owner = format!("user:{}", u["id"]);
                    let photos: Vec<Value> = pictures
                        .iter()
                        .filter(|m| m.owner == owner)
                        .map(|m| crate::render::picture(m, dates))
                        .collect();
                    u["photos"] = Value::Array(photos);
                }
            }
            info
        })
        .collect())
}

/// `POST /chats`.
pub async fn create(St(face): St<State>, caller: Caller, body: Bytes) -> CsResult<Json<Value>> {
    let req: CreateChat = parse_json(&body)?;
    let me = caller.user().get();
    let mut participants: BTreeSet<i64> = req.participants.iter().copied().collect();
    participants.remove(&me);
    if participants.is_empty() {
        return Err(CsError::bad_request(
            "New chat should contain at least one participant.",
        ));
    }
    participants.insert(me);
    let personal = req.is_personal.unwrap_or(participants.len() == 2);
    if personal && participants.len() != 2 {
        return Err(CsError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Personal chat can only contain two users.",
        ));
    }
    let key = ChatKey {
        participants_key: participants
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join("+"),
        is_personal: personal,
    };
    let people = users(&face, &participants).await?;
    if people.len() != participants.len() {
        return Err(CsError::new(StatusCode::NOT_FOUND, "User not found."));
    }
    let actor = Actor::User(me);
    let view = if personal {
        let other = participants
            .iter()
            .copied()
            .find(|p| *p != me)
            .unwrap_or(me);
        let id = face
            .chat
            .private_dialog_id(face.app, caller.user(), UserId::new(other)?)
            .await?
            .ok_or_else(|| CsError::new(StatusCode::NOT_FOUND, "User not found."))?;
        face.chat
            .dialog_for(face.app, actor, DialogId::from(id))
            .await?
    } else {
        match existing_group(&face, me, &key, &participants).await? {
            Some(v) => v,
            None => {
                let title = req
                    .title
                    .clone()
                    .filter(|t| !t.trim().is_empty())
                    .unwrap_or_else(|| generated_title(&participants, &people));
                face.chat
                    .create_dialog(
                        face.app,
                        caller.user(),
                        NewDialog {
                            kind: Some(DialogType::Group),
                            name: Some(title),
                            occupants_ids: participants.iter().copied().collect(),
                            ..Default::default()
                        },
                        actor,
                    )
                    .await?
            }
        }
    };
    let uuid = face
        .ids
        .remember_chat(face.app, view.dialog.id, &key)
        .await?;
    let chat = [(uuid, view)];
    let mut out = render_chats(&face, &chat, true, Dates::Iso).await?;
    crate::flags::show_flags(&face, caller.user(), &chat, &mut out).await?;
    Ok(Json(out.pop().unwrap_or(Value::Null)))
}

/// A group created here earlier with the same participants that still has exactly them.
async fn existing_group(
    face: &State,
    me: i64,
    key: &ChatKey,
    participants: &BTreeSet<i64>,
) -> CsResult<Option<DialogView>> {
    for id in face.ids.chats_with_key(face.app, key).await? {
        if let Ok(v) = face
            .chat
            .dialog_for(face.app, Actor::User(me), DialogId::from(id))
            .await
        {
            let now: BTreeSet<i64> = v.dialog.occupants_ids.iter().copied().collect();
            if &now == participants && v.dialog.kind == DialogType::Group {
                return Ok(Some(v));
            }
        }
    }
    Ok(None)
}

/// The names of the participants, for a group created without a title.
fn generated_title(participants: &BTreeSet<i64>, people: &HashMap<i64, User>) -> String {
    let names: Vec<String> = participants
        .iter()
        .filter_map(|id| people.get(id))
        .map(|u| {
            u.full_name
                .clone()
                .or_else(|| u.login.clone())
                .unwrap_or_default()
        })
        .collect();
    names.join(", ").chars().take(MAX_GENERATED_TITLE).collect()
}

#[derive(Deserialize)]
pub struct ListQuery {
    full: Option<String>,
}

/// `GET /chats` (`?full=1` or `?full=true` adds `allUsers`).
pub async fn list(
    St(face): St<State>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> CsResult<Json<Value>> {
    let full = matches!(q.full.as_deref(), Some("1" | "true"));
    let query = ChatQuery {
        conditions: vec![Condition {
            field: Field::DialogType,
            op: Op::In,
            values: vec![Scalar::Int(2), Scalar::Int(3)],
        }],
        sort: None,
        limit: MAX_LISTED,
        skip: 0,
    };
    let (views, _) = face
        .chat
        .list_dialogs(face.app, Actor::User(caller.user().get()), &query)
        .await?;
    let views: Vec<DialogView> = views.into_iter().filter(is_chat).collect();
    let ids: Vec<ObjectId> = views.iter().map(|v| v.dialog.id).collect();
    let uuids = face.ids.chat_uuids(face.app, &ids).await?;
    let chats: Vec<(String, DialogView)> = uuids.into_iter().zip(views).collect();
    let chats = crate::flags::not_removed(&face, caller.user(), chats).await?;
    let mut out = render_chats(&face, &chats, full, Dates::Iso).await?;
    crate::blocks::show_blocked(&face, caller.user(), &chats, &mut out).await;
    crate::flags::show_flags(&face, caller.user(), &chats, &mut out).await?;
    Ok(Json(Value::Array(out)))
}

/// `GET /chats/<uuid>`: the full info; 404 unless the caller takes part.
pub async fn get_chat(
    St(face): St<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> CsResult<Json<Value>> {
    let chat = [chat_for(&face, caller.user(), &id, CsError::not_found()).await?];
    let mut out = render_chats(&face, &chat, true, Dates::Iso).await?;
    crate::blocks::show_blocked(&face, caller.user(), &chat, &mut out).await;
    crate::flags::show_flags(&face, caller.user(), &chat, &mut out).await?;
    Ok(Json(out.pop().unwrap_or(Value::Null)))
}

/// A message's integer id and its chat's UUID, for rendering.
pub async fn message_ids(face: &State, m: &Message) -> CsResult<(i64, String)> {
    let n = face.ids.message_numbers(face.app, &[m.id]).await?;
    let uuid = face.ids.chat_uuid(face.app, m.dialog_id).await?;
    Ok((n.first().copied().unwrap_or_default(), uuid))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateChat {
    title: Option<String>,
    is_muted: Option<bool>,
    is_archived: Option<bool>,
    is_removed_on_device: Option<bool>,
}

/// `PUT /chats/<uuid>`: the title of a group (any participant, as the domain's roles allow);
/// participants get `chatUpdate` through the bus.
pub async fn update(
    St(face): St<State>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> CsResult<Json<Value>> {
    let req: UpdateChat = parse_json(&body)?;
    let (uuid, view) = chat_for(&face, caller.user(), &id, CsError::forbidden("Forbidden")).await?;
    crate::flags::not_blocked(
        &face,
        view.dialog.id,
        caller.user(),
        CsError::forbidden("Forbidden"),
    )
    .await?;
    if view.dialog.kind == DialogType::Private {
        return Err(CsError::bad_request("You can't update personal chat."));
    }
    let view = match req.title {
        Some(title) => {
            face.chat
                .update_dialog(
                    face.app,
                    Actor::User(caller.user().get()),
                    DialogId::from(view.dialog.id),
                    DialogUpdate {
                        name: Some(Some(title)),
                        ..Default::default()
                    },
                )
                .await?
        }
        None => view,
    };
    // Participants hear of it from the domain's bus (see `ws::Realtime`), as of a rename on the
    // ConnectyCube face.
    let chat = [(uuid, view)];
    let mut out = render_chats(&face, &chat, false, Dates::Iso).await?;
    crate::flags::show_flags(&face, caller.user(), &chat, &mut out).await?;
    Ok(Json(out.pop().unwrap_or(Value::Null)))
}

/// `PUT /chats/<uuid>/settings`: the caller's own settings. `isMuted` is the dialog's mute for
/// this user on both faces; `isArchived` and `isRemovedOnDevice` are this face's (see
/// [`crate::flags`]).
pub async fn settings(
    St(face): St<State>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> CsResult<Json<Value>> {
    let req: UpdateChat = parse_json(&body)?;
    let (uuid, view) = chat_for(&face, caller.user(), &id, CsError::forbidden("Forbidden")).await?;
    let dialog = DialogId::from(view.dialog.id);
    let view = match req.is_muted {
        Some(muted) => {
            face.chat
                .set_muted(face.app, dialog, caller.user(), muted)
                .await?;
            face.chat
                .dialog_for(face.app, Actor::User(caller.user().get()), dialog)
                .await?
        }
        None => view,
    };
    crate::flags::update(&face, view.dialog.id, caller.user(), |f| {
        f.archived = req.is_archived.unwrap_or(f.archived);
        f.removed_on_device = req.is_removed_on_device.unwrap_or(f.removed_on_device);
    })
    .await?;
    let chat = [(uuid, view)];
    let mut out = render_chats(&face, &chat, false, Dates::Iso).await?;
    crate::flags::show_flags(&face, caller.user(), &chat, &mut out).await?;
    Ok(Json(out.pop().unwrap_or(Value::Null)))
}

/// `DELETE /chats/<uuid>`: a group is deleted for everyone by its owner only (its participants get
/// `chatDeleted`); a personal chat is removed from the caller's list, as the domain does for
/// private dialogs (its messages stay for the other side, unlike the original).
pub async fn delete_chat(
    St(face): St<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> CsResult<StatusCode> {
    let (uuid, view) = chat_for(&face, caller.user(), &id, CsError::forbidden("Forbidden")).await?;
    let me = caller.user().get();
    let group = view.dialog.kind == DialogType::Group;
    if group && view.dialog.owner_id != me {
        return Err(CsError::forbidden("You can't delete this chat."));
    }
    let out = face
        .chat
        .delete_dialogs(
            face.app,
            caller.user(),
            &[DialogId::from(view.dialog.id)],
            group,
        )
        .await?;
    if !out.forbidden.is_empty() {
        return Err(CsError::forbidden("You can't delete this chat."));
    }
    if group {
        // Its participants heard `chatDeleted` from the domain's event (as for a deletion on the
        // ConnectyCube face).
        crate::media::remove_chat_images(&face, caller.user(), &uuid).await?;
    } else {
        let dialog = view.dialog.id;
        crate::ws::notify_chat(
            &face,
            dialog,
            &[me],
            "chatDeleted",
            &me.to_string(),
            Value::Null,
        )
        .await?;
    }
    Ok(StatusCode::OK)
}
