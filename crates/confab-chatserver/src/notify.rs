//! `POST /chats/<uuid>/notify` (spec §7): `auxiliary` events such as typing, to the sockets only.

use axum::body::Bytes;
use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::chats::chat_for;
use crate::error::{parse_json, CsError, CsResult};
use crate::State;

#[derive(Deserialize)]
struct Notification {
    name: String,
    text: Option<String>,
    /// Base64 of UTF-8 JSON (Swift's `Data`), handed on as the JSON it holds.
    data: Option<String>,
    /// `webSocket` (the default here), `push` or `all`; push is not sent yet.
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
    Ok(StatusCode::OK)
}
