//! Push notifications (the SDK's pushnotifications module): subscriptions of the session's user
//! and events. Both answer arrays, as ConnectyCube does.

use axum::extract::{Path, State};
use axum::Json;
use confab_core::clock::to_iso;
use confab_core::Error;
use confab_service::push::{
    EventCreated, EventRecipients, NewEvent, PushSubscription, SubscribeRequest,
};
use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::extract::{Auth, Body};
use crate::params::Params;
use crate::AppState;

fn render_subscription(s: &PushSubscription) -> Value {
    json!({ "subscription": {
        "id": s.id,
        "notification_channel": { "name": s.channel },
        "device": { "udid": s.udid, "platform": { "name": s.platform } },
        "push_token": { "environment": s.environment },
        "created_at": to_iso(s.created_at),
        "updated_at": to_iso(s.updated_at),
    }})
}

fn render_event(e: &EventCreated) -> Value {
    json!({ "event": {
        "id": e.id,
        "event_type": e.event_type,
        "message": e.message,
        "date": e.date.map(to_iso),
        "period": e.period,
        "end_date": e.end_date.map(to_iso),
        "name": null,
        "occured_count": 0,
        "active": true,
        "application_id": e.app.get(),
        "user_id": e.user.map(|u| u.get()),
        "kind": "API",
        "environment": e.environment,
        "notification_channel": { "name": e.push_type },
        "created_at": to_iso(e.created_at),
        "updated_at": to_iso(e.created_at),
    }})
}

/// POST /subscriptions
pub async fn create_subscription(
    State(s): State<AppState>,
    auth: Auth,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let token = p.object("push_token")?.unwrap_or_default();
    let device = p.object("device")?.unwrap_or_default();
    let req = SubscribeRequest {
        channel: p.text("notification_channel").unwrap_or_default(),
        environment: token.text("environment").unwrap_or_default(),
        platform: device.text("platform").unwrap_or_default(),
        udid: device.text("udid").unwrap_or_default(),
        token: token.text("client_identification_sequence"),
        bundle_identifier: token.text("bundle_identifier"),
        web_endpoint: token.text("web_endpoint"),
        web_auth: token.text("web_auth"),
        web_p256dh: token.text("web_p256dh"),
    };
    let sub = s.push.subscribe(&auth.ctx, req).await?;
    Ok(Json(json!([render_subscription(&sub)])))
}

/// GET /subscriptions
pub async fn list_subscriptions(State(s): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    let subs = s.push.subscriptions(&auth.ctx).await?;
    Ok(Json(Value::Array(
        subs.iter().map(render_subscription).collect(),
    )))
}

/// DELETE /subscriptions/{id}
pub async fn delete_subscription(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id: i64 = id
        .parse()
        .map_err(|_| Error::not_found("Subscription not found"))?;
    s.push.unsubscribe(&auth.ctx, id).await?;
    Ok(Json(json!({})))
}

/// Ids as an array or a comma-separated string.
fn id_list(v: Option<&Value>, field: &str) -> ApiResult<Vec<i64>> {
    let bad = || Error::invalid(field, "must be a list of integer ids");
    let parse = |s: &str| s.trim().parse::<i64>().map_err(|_| bad());
    let ids = match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(parse)
            .collect::<Result<_, _>>()?,
        Some(Value::Number(n)) => vec![n.as_i64().ok_or_else(bad)?],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::Number(n) => n.as_i64().ok_or_else(bad),
                Value::String(s) => parse(s),
                _ => Err(bad()),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad().into()),
    };
    Ok(ids)
}

/// Tags as a comma-separated string (or an array).
fn tag_list(p: &Params, key: &str) -> Vec<String> {
    match p.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        Some(v) => v
            .as_str()
            .unwrap_or_default()
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
        None => Vec::new(),
    }
}

/// POST /events
pub async fn create_event(
    State(s): State<AppState>,
    auth: Auth,
    Body(p): Body,
) -> ApiResult<Json<Value>> {
    let e = p.object("event")?.unwrap_or_default();
    let user = e.object("user")?.unwrap_or_default();
    let tags = user.object("tags")?.unwrap_or_default();
    let external = e.object("external_user")?.unwrap_or_default();
    let event = NewEvent {
        notification_type: e.text("notification_type"),
        push_type: e.text("push_type").filter(|t| !t.is_empty()),
        environment: e.text("environment"),
        event_type: e.text("event_type"),
        date: e.int("date")?,
        period: e.int("period")?,
        end_date: e.int("end_date")?,
        message: e.text("message"),
        recipients: EventRecipients {
            user_ids: id_list(user.get("ids"), "user.ids")?,
            external_ids: id_list(external.get("ids"), "external_user.ids")?,
            tags_any: tag_list(&tags, "any"),
            tags_all: tag_list(&tags, "all"),
            tags_exclude: tag_list(&tags, "exclude"),
        },
    };
    let created = s.push.create_event(&auth.ctx, event).await?;
    Ok(Json(json!([render_event(&created)])))
}
