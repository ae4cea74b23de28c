//! `POST /chats/<uuid>/notify` (spec §7): `auxiliary` events such as typing, to the sockets and,
//! for the `push` and `all` realms, to the participants' devices.

use axum::body::Bytes;
use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use base64::Engine;
use confab_core::chat::Dialog;
use confab_core::UserId;
use confab_service::push::{Notification as PushNotification, NotificationKind};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::auth::Caller;
use crate::chats::chat_for;
use crate::error::{parse_json, CsError, CsResult};
use crate::{Face, State};

#[derive(Deserialize)]
struct Notification {
    name: String,
    text: Option<String>,
    /// Base64 of UTF-8 JSON (Swift's `Data`), handed on as the JSON it holds.
    data: Option<String>,
    /// `webSocket` (the default here), `push` or `all`.
    #[serde(default)]
    realm: Option<String>,
}

/// `POST /chats/<uuid>/notify`: an `auxiliary` event (typing and the like) to every participant's
/// sockets, the sender's included; nothing is stored.
pub async fn notify(
    St(face): St<State>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> CsResult<StatusCode> {
    let req: Notification = parse_json(&body)?;
    if !matches!(
        req.realm.as_deref(),
        None | Some("webSocket" | "push" | "all")
    ) {
        return Err(CsError::bad_request(
            "Invalid or missing fields in the request body.",
        ));
    }
    let data = match req.data.as_deref() {
        None => Value::Null,
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|raw| serde_json::from_slice(&raw).ok())
            .ok_or_else(|| {
                CsError::bad_request("Invalid or missing fields in the request body.")
            })?,
    };
    let (_, view) = chat_for(&face, caller.user(), &id, CsError::forbidden("Forbidden")).await?;
    crate::flags::not_blocked(
        &face,
        view.dialog.id,
        caller.user(),
        CsError::forbidden("Forbidden"),
    )
    .await?;
    if req.realm.as_deref() != Some("push") {
        crate::ws::notify_chat(
            &face,
            view.dialog.id,
            &view.dialog.occupants_ids,
            "auxiliary",
            &caller.user().to_string(),
            json!({"name": req.name, "text": req.text, "data": data}),
        )
        .await?;
    }
    if matches!(req.realm.as_deref(), Some("push" | "all")) {
        push(&face, &caller, &view.dialog, req, data).await?;
    }
    Ok(StatusCode::OK)
}

/// The `push` and `all` realms: the other participants' devices (not those who muted the chat,
/// blocked it or are blocked in it) get the event as a push.
async fn push(
    face: &Face,
    caller: &Caller,
    dialog: &Dialog,
    req: Notification,
    data: Value,
) -> CsResult<()> {
    let me = caller.user().get();
    let users: Vec<UserId> = crate::flags::listeners(face, dialog.id, &dialog.occupants_ids)
        .await?
        .into_iter()
        .filter(|&u| u != me)
        .filter_map(|u| UserId::new(u).ok())
        .collect();
    let mut custom = Map::new();
    custom.insert("event".into(), json!("auxiliary"));
    custom.insert("name".into(), json!(req.name));
    if !data.is_null() {
        custom.insert("data".into(), data);
    }
    let notification = PushNotification {
        kind: NotificationKind::Event,
        message: req.text.unwrap_or(req.name),
        custom,
        dialog_id: Some(dialog.id.to_string()),
        sender_id: Some(me),
        message_id: None,
        event_id: None,
        payload: None,
        apns_payload: None,
        repeat: None,
    };
    face.push
        .notify_in_dialog(face.app, dialog.id, &users, &notification)
        .await?;
    Ok(())
}
