//! Builds the push providers the configuration names and starts the outbox worker.

use std::sync::Arc;
use std::time::Duration;

use confab_core::{Error, ErrorKind, Result};
use confab_push::apns::{Apns, ApnsConfig};
use confab_push::fcm::Fcm;
use confab_push::webhook::Webhook;
use confab_push::webpush::WebPush;
use confab_push::{Providers, Worker, WorkerConfig};
use confab_service::Push;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Config;

fn config_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Invalid, format!("{what}: {e}"))
}

/// The providers whose settings are present; a provider with none is not used.
pub fn providers(config: &Config) -> Result<Providers> {
    let timeout = Duration::from_secs(config.push_timeout_secs.max(1));
    let mut p = Providers::default();
    if let Some(url) = &config.push_webhook_url {
        let hook = Webhook::new(url.clone(), config.push_webhook_secret.clone(), timeout)
            .map_err(|e| config_error("push_webhook_url", e))?;
        p.webhook = Some(Arc::new(hook));
    }
    if let Some(path) = &config.fcm_credentials {
        let fcm = Fcm::from_file(
            &path.to_string_lossy(),
            config.fcm_endpoint.clone(),
            timeout,
        )
        .map_err(|e| config_error("fcm_credentials", e))?;
        p.fcm = Some(Arc::new(fcm));
    }
    if let (Some(key), Some(key_id), Some(team_id), Some(topic)) = (
        &config.apns_key,
        &config.apns_key_id,
        &config.apns_team_id,
        &config.apns_topic,
    ) {
        let read = |path: &std::path::Path, what: &str| {
            std::fs::read(path).map_err(|e| config_error(what, format!("{}: {e}", path.display())))
        };
        let key_pem =
            String::from_utf8(read(key, "apns_key")?).map_err(|e| config_error("apns_key", e))?;
        let ca_pem = match &config.apns_ca_file {
            Some(path) => Some(read(path, "apns_ca_file")?),
            None => None,
        };
        let apns = Apns::new(
            ApnsConfig {
                key_pem,
                key_id: key_id.clone(),
                team_id: team_id.clone(),
                topic: topic.clone(),
                endpoint: config.apns_endpoint.clone(),
                ca_pem,
            },
            timeout,
        )
        .map_err(|e| config_error("apns_key", e))?;
        p.apns = Some(Arc::new(apns));
    }
    if let Some(key) = &config.vapid_private_key {
        let web = WebPush::new(
            key,
            config.vapid_subject.clone(),
            config.push_allow_private_endpoints,
            timeout,
        )
        .map_err(|e| config_error("vapid_private_key", e))?;
        p.web = Some(Arc::new(web));
    }
    Ok(p)
}

/// Starts the worker that sends what the outbox holds, until `stop`.
pub fn start_worker(
    push: &Push,
    providers: Providers,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let worker = Worker::new(
        push.store(),
        push.outbox_signal(),
        providers,
        WorkerConfig::default(),
    );
    tokio::spawn(worker.run(stop))
}
