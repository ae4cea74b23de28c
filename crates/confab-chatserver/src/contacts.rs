//! Contacts (spec §3.2): a user's list of other users with a name, a favourite flag and a
//! blocked flag (a label only, as in the original; blocking is `PUT /chats/<id>/block`).

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::Json;
use confab_core::UserId;
use confab_service::Contact;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::auth::Caller;
use crate::chats::users;
use crate::error::{parse_json, CsError, CsResult};
use crate::render::{user_info, Dates};
use crate::State;

/// Longest contact name.
const MAX_NAME_CHARS: usize = 100;

/// The body of `POST /users/me/contacts`. The original decoded a whole `ContactInfo` (so it
/// needed `isFavorite`, `isBlocked` and the user's `username`); the document's shorter body,
/// `{"name", "isFavorite", "user": {"id"}}`, is enough here.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewContact {
    name: Option<String>,
    #[serde(default)]
    is_favorite: bool,
    #[serde(default)]
    is_blocked: bool,
    user: UserRef,
}

#[derive(Deserialize)]
struct UserRef {
    id: i64,
}

fn user_not_found() -> CsError {
    CsError::new(StatusCode::NOT_FOUND, "User not found.")
}

/// `ContactInfo`s, with their users.
async fn render(face: &State, contacts: &[Contact]) -> CsResult<Vec<Value>> {
    let ids: BTreeSet<i64> = contacts.iter().map(|c| c.user.get()).collect();
    let people = users(face, &ids).await?;
    Ok(contacts
        .iter()
        .filter_map(|c| {
            let user = people.get(&c.user.get())?;
            let mut o = Map::new();
            o.insert("id".into(), json!(c.id));
            if let Some(n) = &c.name {
                o.insert("name".into(), json!(n));
            }
            o.insert("isFavorite".into(), json!(c.is_favorite));
            o.insert("isBlocked".into(), json!(c.is_blocked));
            o.insert("user".into(), user_info(user, false, Dates::Iso));
            Some(Value::Object(o))
        })
        .collect())
}

/// `GET /users/me/contacts`.
pub async fn list(St(face): St<State>, caller: Caller) -> CsResult<Json<Value>> {
    let contacts = face.ids.contacts(face.app, caller.user()).await?;
    Ok(Json(Value::Array(render(&face, &contacts).await?)))
}

/// `POST /users/me/contacts`: adds a user of the app (not oneself); a user already in the list
/// answers the existing contact, unchanged.
pub async fn add(St(face): St<State>, caller: Caller, body: Bytes) -> CsResult<Json<Value>> {
    let req: NewContact = parse_json(&body)?;
    let user = UserId::new(req.user.id).map_err(|_| user_not_found())?;
    if user == caller.user() {
        return Err(CsError::bad_request("You can't add yourself to contacts."));
    }
    let name = req
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if name
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NAME_CHARS)
    {
        return Err(CsError::bad_request(
            "Contact name should be at most 100 characters long.",
        ));
    }
    if users(&face, &BTreeSet::from([user.get()]))
        .await?
        .is_empty()
    {
        return Err(user_not_found());
    }
    let contact = face
        .ids
        .add_contact(
            face.app,
            caller.user(),
            user,
            name,
            req.is_favorite,
            req.is_blocked,
        )
        .await?;
    let mut out = render(&face, &[contact]).await?;
    out.pop().map(Json).ok_or_else(user_not_found)
}

/// `DELETE /users/me/contacts/<UUID>`: only the caller's own contacts.
pub async fn delete(
    St(face): St<State>,
    caller: Caller,
    Path(id): Path<String>,
) -> CsResult<StatusCode> {
    if face
        .ids
        .delete_contact(face.app, caller.user(), &id)
        .await?
    {
        Ok(StatusCode::OK)
    } else {
        Err(CsError::new(StatusCode::NOT_FOUND, "Contact not found."))
    }
}
