//! Push for this face's devices (spec §8). A device session whose `DeviceInfo` carries a push
//! token is one of its user's push subscriptions (device id `chatserver:<DeviceInfo.id>`), so the
//! domain's chat alerts reach it like any device. A user with a socket open, on any node, gets no
//! alert: the original pushed a message only when its websocket send failed. (Those who blocked a
//! group or are blocked in it get none either: the domain's group blocks keep them out.) `auxiliary` events with the `push`
//! or `all` realm are pushed to the participants' devices, unless they muted the chat.

use std::collections::HashSet;
use std::sync::Weak;

use async_trait::async_trait;
use confab_core::{ErrorKind, UserId};
use confab_service::push::{AlertFilter, ChatAlert, SubscribeRequest};
use serde_json::Value;

use crate::error::{CsError, CsResult};
use crate::users::{DeviceInfo, Transport};
use crate::Face;

/// What this face's subscriptions' device ids start with.
const UDID_PREFIX: &str = "chatserver:";

/// The subscription a device asks for; `None` without a token. A `web` token is the browser's
/// `PushSubscription` as JSON (`{"endpoint", "keys": {"p256dh", "auth"}}`).
fn subscription(device: &DeviceInfo) -> Option<SubscribeRequest> {
    let token = device.token.as_deref().filter(|t| !t.is_empty())?;
    let (channel, platform) = match device.transport {
        Transport::None => return None,
        Transport::Apns => ("apns", "ios"),
        Transport::Fcm => ("gcm", "android"),
        Transport::Web => ("web", "web"),
    };
    let mut req = SubscribeRequest {
        channel: channel.into(),
        environment: "production".into(),
        platform: platform.into(),
        udid: format!("{UDID_PREFIX}{}", device.id),
        ..SubscribeRequest::default()
    };
    if channel == "web" {
        let sub: Value = serde_json::from_str(token).ok()?;
        let text = |v: &Value| v.as_str().map(str::to_string);
        req.web_endpoint = text(&sub["endpoint"]);
        req.web_p256dh = text(&sub["keys"]["p256dh"]);
        req.web_auth = text(&sub["keys"]["auth"]);
    } else {
        req.token = Some(token.to_string());
    }
    Some(req)
}

/// Makes the user's subscription for `device` what its `DeviceInfo` says now: replaced, or
/// removed when it has no usable token. A token the push service refuses is `400`.
pub async fn sync_device(face: &Face, user: UserId, device: &DeviceInfo) -> CsResult<()> {
    let udid = format!("{UDID_PREFIX}{}", device.id);
    // A device that switched transport keeps no subscription on the old channel.
    face.push.unsubscribe_devices(face.app, user, &udid).await?;
    let Some(req) = subscription(device) else {
        return Ok(());
    };
    match face.push.subscribe_device(face.app, user, req).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind == ErrorKind::Invalid => {
            Err(CsError::bad_request("Invalid device token."))
        }
        Err(e) => Err(e.into()),
    }
}

/// At logout: every device of the user on this face stops getting pushes.
pub async fn forget_devices(face: &Face, user: UserId) -> CsResult<()> {
    face.push
        .unsubscribe_devices(face.app, user, UDID_PREFIX)
        .await?;
    Ok(())
}

/// The face's say in chat alerts (see the module's comment).
pub struct Alerts {
    pub face: Weak<Face>,
}

#[async_trait]
impl AlertFilter for Alerts {
    async fn retain_wanted(&self, alerts: &mut [ChatAlert]) {
        let Some(face) = self.face.upgrade() else {
            return;
        };
        let mine = |a: &ChatAlert| a.app == face.app;
        for a in alerts.iter_mut().filter(|a| mine(a)) {
            a.recipients.retain(|u| !face.hub.has_here(*u));
        }
        // One question to the other nodes for the whole batch.
        let rest: HashSet<UserId> = alerts
            .iter()
            .filter(|a| mine(a))
            .flat_map(|a| a.recipients.iter().copied())
            .collect();
        if rest.is_empty() {
            return;
        }
        let rest: Vec<UserId> = rest.into_iter().collect();
        let elsewhere = face.hub.with_sockets_elsewhere(&rest).await;
        for a in alerts.iter_mut().filter(|a| mine(a)) {
            a.recipients.retain(|u| !elsewhere.contains(u));
        }
    }
}
