//! Events (`POST /events`): a push an app sends to chosen users, one-shot.

use std::collections::BTreeMap;

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;
use confab_core::clock::{now_millis, Millis};
use confab_core::error::FieldErrors;
use confab_core::model::{User, UserQuery};
use confab_core::{AppId, Error, Result, UserId};
use serde_json::{Map, Value};

use super::subscriptions::{CHANNELS, ENVIRONMENTS};
use super::{Notification, NotificationKind, Push, Repeat};
use crate::AuthContext;

/// The periods of `period_date` events ConnectyCube offers, in seconds: a day, a week, a month, a
/// year.
const PERIODS: [i64; 4] = [86_400, 604_800, 2_592_000, 31_557_600];

/// How far ahead a `fixed_date` event may be scheduled.
const MAX_SCHEDULE_AHEAD: Millis = 366 * 24 * 3600 * 1000;

/// Who an event is for: users by id or external id, narrowed by tags.
#[derive(Debug, Clone, Default)]
pub struct EventRecipients {
    pub user_ids: Vec<i64>,
    pub external_ids: Vec<i64>,
    /// Users with any of these tags.
    pub tags_any: Vec<String>,
    /// Only users with all of these tags.
    pub tags_all: Vec<String>,
    /// Not users with any of these tags.
    pub tags_exclude: Vec<String>,
}

impl EventRecipients {
    fn is_empty(&self) -> bool {
        self.user_ids.is_empty()
            && self.external_ids.is_empty()
            && self.tags_any.is_empty()
            && self.tags_all.is_empty()
    }

    fn keeps(&self, user: &User) -> bool {
        let has = |t: &String| user.tags.iter().any(|u| u == t);
        self.tags_all.iter().all(has) && !self.tags_exclude.iter().any(has)
    }
}

/// `POST /events` as the SDK sends it.
#[derive(Debug, Clone, Default)]
pub struct NewEvent {
    pub notification_type: Option<String>,
    /// Only subscriptions of this channel; every channel when `None`.
    pub push_type: Option<String>,
    pub environment: Option<String>,
    pub event_type: Option<String>,
    /// `fixed_date` and `period_date` events: when to send (first), in Unix seconds.
    pub date: Option<i64>,
    /// `period_date` events: the period in seconds (a day, a week, a month or a year)...
    pub period: Option<i64>,
    /// ...and the last time to send, in Unix seconds (none: no end).
    pub end_date: Option<i64>,
    /// Base64 of the text, or of a JSON object of universal parameters.
    pub message: Option<String>,
    pub recipients: EventRecipients,
}

/// What `POST /events` answers.
#[derive(Debug, Clone)]
pub struct EventCreated {
    pub id: i64,
    pub app: AppId,
    pub user: Option<UserId>,
    pub environment: String,
    pub push_type: Option<String>,
    /// `one_shot`, `fixed_date` or `period_date`.
    pub event_type: String,
    /// When a `fixed_date` event is sent (a `period_date` one first).
    pub date: Option<Millis>,
    pub period: Option<i64>,
    pub end_date: Option<Millis>,
    pub message: String,
    pub created_at: i64,
    /// Notifications queued (subscriptions and webhook copies).
    pub queued: usize,
}

fn decode_b64(s: &str) -> Option<String> {
    let s = s.trim();
    let bytes = STANDARD.decode(s).or_else(|_| URL_SAFE.decode(s)).ok()?;
    String::from_utf8(bytes).ok()
}

/// The notification an event's `message` describes.
fn parse_message(raw: &str, event_id: i64) -> Result<Notification> {
    let mut n = Notification {
        kind: NotificationKind::Event,
        message: String::new(),
        custom: Map::new(),
        dialog_id: None,
        sender_id: None,
        message_id: None,
        event_id: Some(event_id),
        payload: Some(raw.to_string()),
        apns_payload: None,
        repeat: None,
    };
    // The REST docs' APNs form: `payload=<base64 of the APNs JSON>`, sent to APNs as given.
    let apns = raw
        .strip_prefix("payload=")
        .map(str::to_string)
        .or_else(|| decode_b64(raw).and_then(|t| t.strip_prefix("payload=").map(str::to_string)));
    if let Some(b64) = apns {
        let json = decode_b64(&b64)
            .and_then(|t| serde_json::from_str::<Map<String, Value>>(&t).ok())
            .ok_or_else(|| Error::invalid("message", "payload is not base64 of a JSON object"))?;
        n.message = json
            .get("aps")
            .and_then(|a| a.get("alert"))
            .and_then(|a| a.as_str().or_else(|| a.get("body").and_then(Value::as_str)))
            .unwrap_or_default()
            .to_string();
        n.apns_payload = Some(json);
        return Ok(n);
    }
    let text = decode_b64(raw).ok_or_else(|| Error::invalid("message", "must be base64"))?;
    match serde_json::from_str::<Value>(&text) {
        // Universal parameters: `message` is the text, the rest travels alongside.
        Ok(Value::Object(mut params)) => {
            n.message = match params.remove("message") {
                Some(Value::String(s)) => s,
                Some(other) => other.to_string(),
                None => String::new(),
            };
            n.custom = params;
        }
        _ => n.message = text,
    }
    if n.message.trim().is_empty() && n.custom.is_empty() {
        return Err(Error::invalid("message", "can't be blank"));
    }
    Ok(n)
}

impl Push {
    /// Checks the event, resolves its recipients among the app's users and queues one notification
    /// per matching subscription (and per user for the webhook).
    pub async fn create_event(&self, ctx: &AuthContext, e: NewEvent) -> Result<EventCreated> {
        let mut errors = FieldErrors::default();
        if e.notification_type.as_deref() != Some("push") {
            errors.add("notification_type", "must be push");
        }
        let environment = e.environment.clone().unwrap_or_default();
        if !ENVIRONMENTS.contains(&environment.as_str()) {
            errors.add(
                "environment",
                format!("must be one of {}", ENVIRONMENTS.join(", ")),
            );
        }
        if let Some(p) = &e.push_type {
            if !CHANNELS.contains(&p.as_str()) {
                errors.add(
                    "push_type",
                    format!("must be one of {}", CHANNELS.join(", ")),
                );
            }
        }
        let now = now_millis();
        let event_type = e.event_type.clone().unwrap_or_else(|| "one_shot".into());
        let mut due_at = now;
        let mut repeat = None;
        let scheduled = |errors: &mut FieldErrors| match e.date {
            None => {
                errors.add("date", format!("is required for {event_type} events"));
                now
            }
            Some(secs) => {
                let at = secs.saturating_mul(1000);
                if at <= now || at > now + MAX_SCHEDULE_AHEAD {
                    errors.add("date", "must be in the future, at most a year ahead");
                }
                at
            }
        };
        match event_type.as_str() {
            "one_shot" => {}
            "fixed_date" => due_at = scheduled(&mut errors),
            "period_date" => {
                due_at = scheduled(&mut errors);
                if !e.period.is_some_and(|p| PERIODS.contains(&p)) {
                    errors.add(
                        "period",
                        "must be 86400, 604800, 2592000 or 31557600 (seconds)",
                    );
                }
                let until = e.end_date.map(|s| s.saturating_mul(1000));
                if until.is_some_and(|u| u < due_at) {
                    errors.add("end_date", "must not be before date");
                }
                repeat = Some(Repeat {
                    every_ms: e.period.unwrap_or(0).saturating_mul(1000),
                    until_ms: until,
                });
            }
            _ => errors.add("event_type", "must be one_shot, fixed_date or period_date"),
        }
        let raw = e.message.clone().unwrap_or_default();
        if raw.trim().is_empty() {
            errors.add("message", "can't be blank");
        }
        if e.recipients.is_empty() {
            errors.add("user", "ids, external_user ids or tags are required");
        }
        errors.into_result()?;

        // Ids a browser can hold exactly (below 2^53), unique enough to tell events apart.
        let id = now_millis() * 1000 + i64::from(rand::random::<u16>() % 1000);
        let mut notification = parse_message(&raw, id)?;
        notification.repeat = repeat;
        let users = self.event_recipients(ctx.app(), &e.recipients).await?;
        let mut subs = self.store.subscriptions_of(ctx.app(), &users).await?;
        subs.retain(|s| {
            s.environment == environment && e.push_type.as_ref().is_none_or(|p| *p == s.channel)
        });
        let pairs: Vec<_> = users.iter().map(|&u| (ctx.app(), u)).collect();
        let queued = self.enqueue(&notification, &subs, &pairs, due_at).await?;
        Ok(EventCreated {
            id,
            app: ctx.app(),
            user: ctx.user().ok(),
            environment,
            push_type: e.push_type,
            date: (event_type != "one_shot").then_some(due_at),
            period: repeat.map(|_| e.period.unwrap_or(0)),
            end_date: repeat.and_then(|r| r.until_ms),
            event_type,
            message: raw,
            created_at: now,
            queued,
        })
    }

    async fn event_recipients(&self, app: AppId, r: &EventRecipients) -> Result<Vec<UserId>> {
        let limit = self.config.max_event_recipients;
        let mut found: BTreeMap<i64, User> = BTreeMap::new();
        let queries = [
            (!r.user_ids.is_empty()).then(|| UserQuery {
                ids: Some(r.user_ids.clone()),
                ..Default::default()
            }),
            (!r.external_ids.is_empty()).then(|| UserQuery {
                external_user_ids: Some(r.external_ids.clone()),
                ..Default::default()
            }),
            (!r.tags_any.is_empty() || !r.tags_all.is_empty()).then(|| UserQuery {
                tags: Some(if r.tags_any.is_empty() {
                    r.tags_all.clone()
                } else {
                    r.tags_any.clone()
                }),
                ..Default::default()
            }),
        ];
        for q in queries.into_iter().flatten() {
            let (users, total) = self
                .accounts
                .list_users(
                    app,
                    &UserQuery {
                        limit: limit + 1,
                        ..q
                    },
                )
                .await?;
            if total > u64::from(limit) {
                return Err(Error::invalid(
                    "user",
                    format!("addresses more than {limit} users"),
                ));
            }
            found.extend(users.into_iter().map(|u| (u.id, u)));
        }
        if found.len() > limit as usize {
            return Err(Error::invalid(
                "user",
                format!("addresses more than {limit} users"),
            ));
        }
        found
            .into_values()
            .filter(|u| r.keeps(u))
            .map(|u| UserId::new(u.id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        let plain = parse_message(&STANDARD.encode("hello"), 1).unwrap();
        assert_eq!(plain.message, "hello");
        let universal = parse_message(
            &STANDARD.encode(r#"{"message":"hi","ios_badge":2,"thread":"t1"}"#),
            1,
        )
        .unwrap();
        assert_eq!(universal.message, "hi");
        assert_eq!(universal.custom["ios_badge"], 2);
        let apns = format!(
            "payload={}",
            STANDARD.encode(r#"{"aps":{"alert":"wake up","sound":"default"}}"#)
        );
        let n = parse_message(&apns, 1).unwrap();
        assert_eq!(n.message, "wake up");
        assert_eq!(n.apns_payload.unwrap()["aps"]["sound"], "default");
        assert!(parse_message("%%% not base64", 1).is_err());
        assert!(parse_message(&STANDARD.encode("  "), 1).is_err());
    }
}
