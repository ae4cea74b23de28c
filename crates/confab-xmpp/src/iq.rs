//! iq handlers, one small section per feature, each with its disco features:
//! ping (XEP-0199), last activity (XEP-0012), service discovery (XEP-0030), carbons enable
//! (XEP-0280), Tigase mobile v2 (client active/inactive), ConnectyCube status streaming, and the
//! RFC 3921 session iq. iqs to another user's full JID are routed to that resource.

use std::sync::Arc;

use confab_core::clock::now_millis;
use confab_core::ErrorKind;

use crate::error::{error_reply, StanzaError};
use crate::hub::{Account, SessionHandle};
use crate::jid::{bare_jid, Jid};
use crate::message::NS_CARBONS;
use crate::session::{NS_SESSION, NS_SM};
use crate::xml::{Element, NS_CLIENT};
use crate::XmppServer;

pub const NS_PING: &str = "urn:xmpp:ping";
pub const NS_LAST: &str = "jabber:iq:last";
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
pub const NS_TIGASE_MOBILE: &str = "http://tigase.org/protocol/mobile#v2";
pub const NS_STATUS_STREAMING: &str = "https://connectycube.com/protocol/status_streaming";
pub const NS_ROSTER: &str = "jabber:iq:roster";

/// Disco features of the iq handlers here.
pub const FEATURES: &[&str] = &[
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_PING,
    NS_LAST,
    NS_TIGASE_MOBILE,
    NS_STATUS_STREAMING,
    NS_SM,
];

/// `<iq type="result">` answering `req`, from `from`.
pub fn result(req: &Element, from: &str, payload: Option<Element>) -> Element {
    let mut r = Element::new("iq", NS_CLIENT)
        .with_attr("type", "result")
        .with_attr("id", req.attr("id").unwrap_or(""))
        .with_attr("from", from);
    if let Some(to) = req.attr("from") {
        r.set_attr("to", to);
    }
    if let Some(p) = payload {
        r.push(p);
    }
    r
}

/// A status-streaming push: an unsolicited last-activity "result", which the SDK reports through
/// `onLastUserActivityListener` (spec §3.7: any iq with `from` and `<query>`; `type="result"` avoids
/// its automatic error reply).
pub fn status_push(target: Account, seconds: u64, watcher: &SessionHandle) -> String {
    let domain = watcher
        .full_jid
        .split_once('@')
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(d, _)| d)
        .unwrap_or("localhost");
    Element::new("iq", NS_CLIENT)
        .with_attr("type", "result")
        .with_attr("id", format!("status-{}", now_millis()))
        .with_attr("from", bare_jid(target.0, target.1, domain))
        .with_attr("to", watcher.full_jid.as_str())
        .with_child(Element::new("query", NS_LAST).with_attr("seconds", seconds.to_string()))
        .to_xml()
}

/// Handles an iq from a bound session; returns the replies to send it.
pub async fn handle(
    srv: &Arc<XmppServer>,
    from: &Arc<SessionHandle>,
    mut iq: Element,
) -> Vec<Element> {
    let domain = srv.config.domain.as_str();
    let typ = iq.attr("type").unwrap_or("").to_string();
    let err = |iq: &Element, e: StanzaError| vec![error_reply(iq, &from.full_jid, e, None)];
    if !matches!(typ.as_str(), "get" | "set" | "result" | "error") || iq.attr("id").is_none() {
        return if matches!(typ.as_str(), "result" | "error") {
            Vec::new()
        } else {
            err(&iq, StanzaError::BAD_REQUEST)
        };
    }
    // Replies carry the sender's real address.
    iq.set_attr("from", from.full_jid.as_str());
    if let Some(replies) = account_query(srv, from, &iq).await {
        return replies;
    }

    // Addressed to a user?
    let to = iq.attr("to").map(str::to_string);
    let target = to.as_deref().and_then(Jid::parse).and_then(|j| {
        let acc = j.account()?;
        j.domain
            .eq_ignore_ascii_case(domain)
            .then(|| (acc, j.resource.map(str::to_string)))
    });
    if let Some(((app, user), resource)) = target {
        if app != from.app {
            return err(&iq, StanzaError::SERVICE_UNAVAILABLE);
        }
        let payload = iq.elements().next().cloned();
        if let Some(resource) = resource {
            // Full JID: route to that resource (replies included).
            return match srv.hub.session((app, user), &resource) {
                Some(s) => {
                    iq.set_attr("xmlns", NS_CLIENT);
                    s.send(iq.to_xml().into());
                    Vec::new()
                }
                None if matches!(typ.as_str(), "get" | "set") => {
                    err(&iq, StanzaError::SERVICE_UNAVAILABLE)
                }
                None => Vec::new(),
            };
        }
        if typ == "get" {
            if let Some(p) = &payload {
                if p.is("query", NS_LAST) {
                    return last_activity(srv, from, &iq, (app, user)).await;
                }
                if p.is("ping", NS_PING) {
                    return vec![result(&iq, &bare_jid(app, user, domain), None)];
                }
            }
        }
        return if matches!(typ.as_str(), "get" | "set") {
            err(&iq, StanzaError::SERVICE_UNAVAILABLE)
        } else {
            Vec::new()
        };
    }
    if let Some(to) = &to {
        if !to.eq_ignore_ascii_case(domain) {
            // Rooms and other services are not served by this face yet.
            return if matches!(typ.as_str(), "get" | "set") {
                err(&iq, StanzaError::SERVICE_UNAVAILABLE)
            } else {
                Vec::new()
            };
        }
    }
    if !matches!(typ.as_str(), "get" | "set") {
        return Vec::new();
    }

    // Addressed to the server (or to no one, which means the account/server).
    let Some(payload) = iq.elements().next().cloned() else {
        return err(&iq, StanzaError::BAD_REQUEST);
    };
    match (typ.as_str(), payload.ns.as_str(), payload.local_name()) {
        ("get", NS_PING, "ping") => vec![result(&iq, domain, None)],
        ("set", NS_SESSION, "session") => vec![result(&iq, domain, None)],
        ("get", NS_DISCO_INFO, "query") => {
            let mut q = Element::new("query", NS_DISCO_INFO);
            if let Some(node) = payload.attr("node") {
                q.set_attr("node", node);
            }
            q.push(
                Element::bare("identity")
                    .with_attr("category", "server")
                    .with_attr("type", "im")
                    .with_attr("name", "confab"),
            );
            let mut features: Vec<&str> = FEATURES
                .iter()
                .chain(crate::message::FEATURES)
                .chain(crate::privacy::FEATURES)
                .copied()
                .collect();
            features.sort_unstable();
            features.dedup();
            for f in features {
                q.push(Element::bare("feature").with_attr("var", f));
            }
            vec![result(&iq, domain, Some(q))]
        }
        ("get", NS_DISCO_ITEMS, "query") => {
            vec![result(
                &iq,
                domain,
                Some(Element::new("query", NS_DISCO_ITEMS)),
            )]
        }
        ("get", NS_LAST, "query") => {
            // The server's own uptime is not tracked; it has been "active" all along.
            let q = Element::new("query", NS_LAST).with_attr("seconds", "0");
            vec![result(&iq, domain, Some(q))]
        }
        ("set", NS_CARBONS, "enable") => {
            from.set_carbons(true);
            vec![result(&iq, domain, None)]
        }
        ("set", NS_CARBONS, "disable") => {
            from.set_carbons(false);
            vec![result(&iq, domain, None)]
        }
        ("set", NS_TIGASE_MOBILE, "mobile") => {
            // enable="true" = markInactive (the client is in the background).
            let inactive = payload.attr("enable") == Some("true");
            from.set_inactive(inactive);
            vec![result(&iq, domain, None)]
        }
        ("set", NS_STATUS_STREAMING, "subscribe") => {
            let target = payload
                .attr("user_jid")
                .and_then(Jid::parse)
                .and_then(|j| j.account())
                .filter(|(app, _)| *app == from.app);
            let Some(target) = target else {
                return err(&iq, StanzaError::BAD_REQUEST);
            };
            let on = payload.attr("enable") != Some("false");
            srv.hub.watch(target, from, on);
            vec![result(&iq, domain, None)]
        }
        _ => err(&iq, StanzaError::SERVICE_UNAVAILABLE),
    }
}

/// Roster (RFC 6121) and privacy-list (XEP-0016) queries about the sender's own account: addressed
/// to no one, the server, or the sender's bare JID.
async fn account_query(
    srv: &Arc<XmppServer>,
    from: &Arc<SessionHandle>,
    iq: &Element,
) -> Option<Vec<Element>> {
    if !matches!(iq.attr("type"), Some("get" | "set")) {
        return None;
    }
    let payload = iq.elements().next()?;
    let own = crate::privacy::own_bare(srv, from);
    let reply_from = match iq.attr("to") {
        None => srv.config.domain.as_str(),
        Some(to) if to.eq_ignore_ascii_case(&srv.config.domain) => srv.config.domain.as_str(),
        Some(to) if to.eq_ignore_ascii_case(&own) => own.as_str(),
        Some(_) => return None,
    };
    if payload.is("query", NS_ROSTER) {
        Some(crate::roster::handle_iq(srv, from, iq, reply_from).await)
    } else if payload.is("query", crate::privacy::NS_PRIVACY) {
        Some(crate::privacy::handle_iq(srv, from, iq, reply_from).await)
    } else {
        None
    }
}

/// XEP-0012 for a user: 0 while online (on any node), else seconds since the last session ended. For users not seen
/// since the server started, their last REST request (or sign-up) stands in.
async fn last_activity(
    srv: &Arc<XmppServer>,
    from: &SessionHandle,
    iq: &Element,
    target: Account,
) -> Vec<Element> {
    let domain = srv.config.domain.as_str();
    let elsewhere = !srv.cluster.nodes_with(target.0, target.1).is_empty();
    let seconds = match srv.hub.last_activity(target) {
        _ if elsewhere => 0,
        Some(s) => s,
        None => match srv
            .accounts
            .user(target.0, confab_service::UserKey::Id(target.1.get()))
            .await
        {
            Ok(u) => {
                let at = u.last_request_at.unwrap_or(u.created_at);
                ((now_millis() - at).max(0) / 1000) as u64
            }
            Err(e) if e.kind == ErrorKind::NotFound => {
                return vec![error_reply(
                    iq,
                    &from.full_jid,
                    StanzaError::ITEM_NOT_FOUND,
                    None,
                )]
            }
            Err(e) => {
                return vec![error_reply(
                    iq,
                    &from.full_jid,
                    StanzaError::from_domain(&e),
                    None,
                )]
            }
        },
    };
    let q = Element::new("query", NS_LAST).with_attr("seconds", seconds.to_string());
    vec![result(iq, &bare_jid(target.0, target.1, domain), Some(q))]
}
