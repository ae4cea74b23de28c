//! Users: sign up, look up, list, update and delete.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use confab_core::model::{User, UserFields, UserQuery};
use confab_core::{Error, UserId};
use confab_service::UserKey;
use serde_json::{json, Value};

use super::render;
use crate::error::ApiResult;
use crate::extract::{Auth, Body, MaybeAuth, AUTH_KEY_HEADER};
use crate::params::{ParamExt, Params};
use crate::AppState;

const DEFAULT_PAGE: u32 = 10;
const MAX_PAGE: u32 = 100;

/// A text field: absent → untouched, `null` or `""` → cleared, string/number → set.
fn text_field(p: &Params, key: &str) -> Result<Option<Option<String>>, Error> {
    match p.0.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => match v.as_text() {
            Some(s) if s.trim().is_empty() => Ok(Some(None)),
            Some(s) => Ok(Some(Some(s.trim().to_string()))),
            None => Err(Error::bad_request(format!("{key} must be a string"))),
        },
    }
}

fn int_field(p: &Params, key: &str) -> Result<Option<Option<i64>>, Error> {
    match p.0.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(Some(None)),
        Some(v) => v
            .as_int()
            .map(|i| Some(Some(i)))
            .ok_or_else(|| Error::bad_request(format!("{key} must be an integer"))),
    }
}

/// The writable profile fields of a `user` object.
fn user_fields(p: &Params) -> Result<UserFields, Error> {
    let tags = match p.0.get("tag_list") {
        None => None,
        Some(Value::Null) => Some(Vec::new()),
        Some(v) => Some(
            v.as_list()
                .ok_or_else(|| Error::bad_request("tag_list must be a string or an array"))?,
        ),
    };
    Ok(UserFields {
        login: text_field(p, "login")?,
        email: text_field(p, "email")?,
        full_name: text_field(p, "full_name")?,
        phone: text_field(p, "phone")?,
        website: text_field(p, "website")?,
        external_user_id: int_field(p, "external_user_id")?,
        external_id: text_field(p, "external_id")?,
        facebook_id: text_field(p, "facebook_id")?,
        twitter_id: text_field(p, "twitter_id")?,
        custom_data: text_field(p, "custom_data")?,
        blob_id: int_field(p, "blob_id")?,
        avatar: text_field(p, "avatar")?,
        timezone: int_field(p, "timezone")?,
        tags,
    })
}

fn user_object(p: &Params) -> Result<Params, Error> {
    p.object("user")?
        .ok_or_else(|| Error::invalid("user", "can't be blank"))
}

fn one(user: &User) -> Json<Value> {
    Json(json!({ "user": render::user(user) }))
}

/// POST /users
pub async fn create_user(
    State(s): State<AppState>,
    MaybeAuth(auth): MaybeAuth,
    headers: HeaderMap,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let app = match auth {
        Some(a) => a.ctx.app(),
        None => {
            let key = headers
                .get(AUTH_KEY_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            s.accounts.app_by_auth_key_only(key.trim()).await?.id
        }
    };
    let u = user_object(&p)?;
    let fields = user_fields(&u)?;
    let user = s.accounts.signup(app, fields, u.text("password")).await?;
    Ok(one(&user))
}

/// GET /users/{id}
pub async fn get_user(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id: UserId = id.parse()?;
    let user = s
        .accounts
        .user(auth.ctx.app(), UserKey::Id(id.get()))
        .await?;
    Ok(one(&user))
}

/// GET /users/by_login
pub async fn get_user_by_login(
    State(s): State<AppState>,
    auth: Auth,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let login = p
        .text("login")
        .ok_or_else(|| Error::invalid("login", "can't be blank"))?;
    let user = s
        .accounts
        .user(auth.ctx.app(), UserKey::Login(login))
        .await?;
    Ok(one(&user))
}

/// GET /users/by_email
pub async fn get_user_by_email(
    State(s): State<AppState>,
    auth: Auth,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let email = p
        .text("email")
        .ok_or_else(|| Error::invalid("email", "can't be blank"))?;
    let user = s
        .accounts
        .user(auth.ctx.app(), UserKey::Email(email))
        .await?;
    Ok(one(&user))
}

/// GET /users/external/{id}
pub async fn get_user_by_external_id(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id: i64 = id
        .trim()
        .parse()
        .map_err(|_| Error::bad_request("invalid external user id"))?;
    let user = s
        .accounts
        .user(auth.ctx.app(), UserKey::ExternalUserId(id))
        .await?;
    Ok(one(&user))
}

fn ints(v: Option<Vec<String>>, key: &str) -> Result<Option<Vec<i64>>, Error> {
    v.map(|items| {
        items
            .iter()
            .map(|s| s.parse::<i64>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Error::bad_request(format!("{key} must hold integers")))
    })
    .transpose()
}

/// A field filter: `field=v`, `field=a,b`, `field[in]=…` or `field[in][]=…`.
fn filter_list(p: &Params, key: &str) -> Result<Option<Vec<String>>, Error> {
    match p.get(key) {
        None => Ok(None),
        Some(Value::Object(ops)) => {
            let mut out = Vec::new();
            for (op, v) in ops {
                if op != "in" && op != "eq" {
                    return Err(Error::bad_request(format!(
                        "unsupported operator {key}[{op:.20}]"
                    )));
                }
                out.extend(v.as_list().unwrap_or_default());
            }
            Ok(Some(out))
        }
        Some(v) => v
            .as_list()
            .map(Some)
            .ok_or_else(|| Error::bad_request(format!("{key} is malformed"))),
    }
}

const MAX_FILTER_VALUES: usize = 100;

fn user_query(p: &Params) -> Result<UserQuery, Error> {
    let q = UserQuery {
        ids: ints(filter_list(p, "id")?, "id")?,
        logins: filter_list(p, "login")?,
        emails: filter_list(p, "email")?,
        full_name: p.text("full_name"),
        name_or_login: None,
        external_user_ids: ints(filter_list(p, "external_user_id")?, "external_user_id")?,
        tags: filter_list(p, "user_tags")?.or(filter_list(p, "tags")?),
        limit: p.bounded("limit", DEFAULT_PAGE, MAX_PAGE)?,
        // The SDK's types name it `offset`; the REST docs name it `skip`.
        skip: match p.get("skip") {
            Some(_) => p.bounded("skip", 0, u32::MAX)?,
            None => p.bounded("offset", 0, u32::MAX)?,
        },
    };
    let too_many = [
        q.ids.as_ref().map(Vec::len),
        q.logins.as_ref().map(Vec::len),
        q.emails.as_ref().map(Vec::len),
    ]
    .into_iter()
    .flatten()
    .any(|n| n > MAX_FILTER_VALUES);
    if too_many {
        return Err(Error::bad_request(format!(
            "at most {MAX_FILTER_VALUES} values per filter"
        )));
    }
    Ok(q)
}

/// GET /users/v2
pub async fn list_users(
    State(s): State<AppState>,
    auth: Auth,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let query = user_query(&p)?;
    let (users, total) = s.accounts.list_users(auth.ctx.app(), &query).await?;
    Ok(Json(json!({
        "limit": query.limit,
        "skip": query.skip,
        "total_entries": total,
        "items": users.iter().map(render::user).collect::<Vec<_>>(),
    })))
}

/// The deprecated paged list shape: `{current_page, per_page, total_entries, items: [{user}]}`.
async fn list_v1(
    s: &AppState,
    auth: &Auth,
    p: &Params,
    mut query: UserQuery,
) -> ApiResult<Json<Value>> {
    let per_page = p.bounded("per_page", DEFAULT_PAGE, MAX_PAGE)?;
    let page = p.bounded("page", 1, 1_000_000)?.max(1);
    query.limit = per_page;
    query.skip = (page - 1) * per_page;
    let (users, total) = s.accounts.list_users(auth.ctx.app(), &query).await?;
    Ok(Json(json!({
        "current_page": page,
        "per_page": per_page,
        "total_entries": total,
        "items": users.iter().map(|u| json!({ "user": render::user(u) })).collect::<Vec<_>>(),
    })))
}

/// GET /users — the deprecated list, with `filter[]=<type> <field> <op> <values>`.
pub async fn list_users_v1(
    State(s): State<AppState>,
    auth: Auth,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let mut query = UserQuery::default();
    for filter in p
        .get("filter")
        .and_then(|f| match f {
            Value::Array(_) => f.as_list(),
            other => other.as_text().map(|t| vec![t]),
        })
        .unwrap_or_default()
    {
        let parts: Vec<&str> = filter.splitn(4, ' ').collect();
        let [_ty, field, op, values] = parts[..] else {
            return Err(Error::bad_request("filter must be '<type> <field> <op> <value>'").into());
        };
        if op != "in" && op != "eq" {
            return Err(Error::bad_request(format!("unsupported filter operator {op:.20}")).into());
        }
        let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
        match field {
            "id" => query.ids = ints(Some(values), "id")?,
            "login" => query.logins = Some(values),
            "email" => query.emails = Some(values),
            "external_user_id" => query.external_user_ids = ints(Some(values), "external_user_id")?,
            _ => {
                return Err(
                    Error::bad_request(format!("unsupported filter field {field:.30}")).into(),
                )
            }
        }
    }
    list_v1(&s, &auth, &p, query).await
}

/// GET /users/by_full_name
pub async fn list_users_by_full_name(
    State(s): State<AppState>,
    auth: Auth,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let name = p
        .text("full_name")
        .ok_or_else(|| Error::invalid("full_name", "can't be blank"))?;
    let query = UserQuery {
        full_name: Some(name),
        ..Default::default()
    };
    list_v1(&s, &auth, &p, query).await
}

/// GET /users/by_tags
pub async fn list_users_by_tags(
    State(s): State<AppState>,
    auth: Auth,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let tags = filter_list(&p, "tags")?
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::invalid("tags", "can't be blank"))?;
    let query = UserQuery {
        tags: Some(tags),
        ..Default::default()
    };
    list_v1(&s, &auth, &p, query).await
}

/// PUT /users/{id}
pub async fn update_user(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let id: UserId = id.parse()?;
    let u = user_object(&p)?;
    let fields = user_fields(&u)?;
    let password = u.text("password").map(|new| (new, u.text("old_password")));
    let user = s
        .accounts
        .update_self(&auth.ctx, id, fields, password)
        .await?;
    Ok(one(&user))
}

/// DELETE /users/{id}
pub async fn delete_user(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id: UserId = id.parse()?;
    s.accounts.delete_self(&auth.ctx, id).await?;
    Ok(Json(json!({})))
}
