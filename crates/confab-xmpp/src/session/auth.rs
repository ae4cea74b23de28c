//! Before the session is bound: STARTTLS, SASL PLAIN (a session token or a password, rate limited)
//! and resource binding.

use super::*;

impl Session {
    pub(super) async fn pre_auth<T: Transport>(&mut self, t: &mut T, el: Element) -> Flow {
        if el.is("starttls", NS_TLS) {
            let Some(acceptor) = self.srv.tls.clone().filter(|_| t.can_starttls()) else {
                self.send(t, &Element::new("failure", NS_TLS).to_xml())
                    .await;
                return Flow::Close(None);
            };
            if !self
                .send(t, &Element::new("proceed", NS_TLS).to_xml())
                .await
            {
                return Flow::Close(None);
            }
            // Anything pipelined before the handshake is discarded (RFC 6120 §5.4.3.3).
            self.reader.reset();
            if let Err(e) = t.starttls(&acceptor).await {
                tracing::info!(peer = %self.info.peer, error = %e, "TLS handshake failed");
                self.header_sent = false;
                return Flow::Close(None);
            }
            self.opened = false;
            self.header_sent = false;
            return Flow::Continue;
        }
        if el.is("auth", NS_SASL) {
            if el.attr("mechanism") != Some("PLAIN") {
                return self.sasl_failure(t, "invalid-mechanism").await;
            }
            let payload = el.text();
            let payload = payload.trim();
            if payload.is_empty() {
                self.awaiting_response = true;
                let ok = self
                    .send(t, &Element::new("challenge", NS_SASL).to_xml())
                    .await;
                return if ok {
                    Flow::Continue
                } else {
                    Flow::Close(None)
                };
            }
            return self.sasl_plain(t, payload).await;
        }
        if el.is("response", NS_SASL) && self.awaiting_response {
            self.awaiting_response = false;
            let payload = el.text();
            return self.sasl_plain(t, payload.trim()).await;
        }
        if el.is("abort", NS_SASL) {
            self.awaiting_response = false;
            return self.sasl_failure(t, "aborted").await;
        }
        Flow::Close(Some("not-authorized"))
    }

    pub(super) async fn sasl_failure<T: Transport>(&mut self, t: &mut T, condition: &str) -> Flow {
        let f = Element::new("failure", NS_SASL).with_child(Element::bare(condition));
        self.send(t, &f.to_xml()).await;
        // The SDK stays stuck in "connecting" if the stream stays open after a failure (spec §3.4).
        Flow::Close(None)
    }

    pub(super) async fn sasl_plain<T: Transport>(&mut self, t: &mut T, b64: &str) -> Flow {
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64) else {
            return self.sasl_failure(t, "incorrect-encoding").await;
        };
        let mut parts = raw.split(|&b| b == 0);
        let (Some(authzid), Some(authcid), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return self.sasl_failure(t, "malformed-request").await;
        };
        let (Ok(authzid), Ok(authcid), Ok(password)) = (
            std::str::from_utf8(authzid),
            std::str::from_utf8(authcid),
            std::str::from_utf8(password),
        ) else {
            return self.sasl_failure(t, "malformed-request").await;
        };
        let Some((app, user)) = parse_username(authcid) else {
            return self.sasl_failure(t, "not-authorized").await;
        };
        if !authzid.is_empty()
            && authzid != authcid
            && authzid != bare_jid(app, user, self.domain())
        {
            return self.sasl_failure(t, "invalid-authzid").await;
        }
        let per_account = self.srv.auth_limiter.as_ref();
        let per_source = self.srv.accounts.check_login_source(self.info.peer.ip());
        if per_account.is_some_and(|l| l.check(&(app.get(), user.get())).is_err())
            || per_source.is_err()
        {
            tracing::info!(peer = %self.info.peer, app = %app, user = %user, "xmpp authentication rate-limited");
            return self.sasl_failure(t, "temporary-auth-failure").await;
        }
        match self
            .srv
            .accounts
            .verify_chat_secret(app, user, password)
            .await
        {
            Ok(_) => {
                tracing::info!(peer = %self.info.peer, app = %app, user = %user, "xmpp authenticated");
                self.account = Some((app, user));
                if !self
                    .send(t, &Element::new("success", NS_SASL).to_xml())
                    .await
                {
                    return Flow::Close(None);
                }
                // The client restarts the stream.
                self.reader.reset();
                self.opened = false;
                Flow::Continue
            }
            Err(e) if e.kind == ErrorKind::Internal => {
                tracing::error!(error = ?e, "chat secret check failed");
                self.sasl_failure(t, "temporary-auth-failure").await
            }
            Err(_) => {
                tracing::info!(peer = %self.info.peer, app = %app, user = %user, "xmpp authentication failed");
                self.sasl_failure(t, "not-authorized").await
            }
        }
    }

    pub(super) async fn pre_bind<T: Transport>(
        &mut self,
        t: &mut T,
        el: Element,
        rx: &mut Option<mpsc::Receiver<Outbound>>,
    ) -> Flow {
        if el.name == "iq" && el.ns == NS_CLIENT {
            let id = el.attr("id").unwrap_or("").to_string();
            if el.attr("type") == Some("set") && el.has_child("bind", NS_BIND) {
                let (app, user) = self.account.expect("authenticated");
                // Always a long random resource: the SDK drops 1:1 messages whose `from` contains its
                // own resource as a substring, so short or client-chosen ones are unsafe (spec §3.5).
                // COMPAT: connectycube JS SDK 6.1.2 `from.includes(myResource)` filter.
                let resource = random_hex(16);
                let full = format!("{}/{resource}", bare_jid(app, user, self.domain()));
                let (handle, queue, first) = self.srv.hub.register(
                    app,
                    user,
                    resource,
                    full.clone(),
                    self.srv.config.session_queue_len,
                );
                *rx = Some(queue);
                self.bound = Some(Bound {
                    handle,
                    available: false,
                    // The node's name first: when the node is gone, the others release its claims.
                    claim: format!("{}:{}", self.srv.cluster.node_id(), random_hex(16)),
                    claimed: false,
                });
                if first {
                    self.srv.privacy_warmup.read_ahead((app, user));
                    self.srv.cluster.online_here(app, user, true);
                    self.srv.hub.notify_watchers((app, user), iq::status_push);
                }
                let reply = Element::new("iq", NS_CLIENT)
                    .with_attr("type", "result")
                    .with_attr("id", id)
                    .with_child(
                        Element::new("bind", NS_BIND)
                            .with_child(Element::bare("jid").with_text(full)),
                    );
                let ok = self.send(t, &reply.to_xml()).await;
                return if ok {
                    Flow::Continue
                } else {
                    Flow::Close(None)
                };
            }
            if el.child("session", NS_SESSION).is_some() {
                let reply = iq::result(&el, self.domain(), None);
                let ok = self.send(t, &reply.to_xml()).await;
                return if ok {
                    Flow::Continue
                } else {
                    Flow::Close(None)
                };
            }
        }
        if el.is("enable", NS_SM) {
            let f = Element::new("failed", NS_SM)
                .with_child(Element::new("unexpected-request", crate::xml::NS_STANZAS));
            let ok = self.send(t, &f.to_xml()).await;
            return if ok {
                Flow::Continue
            } else {
                Flow::Close(None)
            };
        }
        Flow::Close(Some("not-authorized"))
    }
}
