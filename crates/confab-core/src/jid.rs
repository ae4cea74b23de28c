//! JIDs as ConnectyCube uses them: `<userId>-<appId>@<domain>[/<resource>]`.

use crate::{AppId, UserId};

/// A parsed JID (no stringprep: ConnectyCube JIDs are ASCII digits, `-` and a DNS name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jid<'a> {
    pub local: Option<&'a str>,
    pub domain: &'a str,
    pub resource: Option<&'a str>,
}

impl<'a> Jid<'a> {
    pub fn parse(s: &'a str) -> Option<Self> {
        let (bare, resource) = match s.split_once('/') {
            Some((b, r)) if !r.is_empty() => (b, Some(r)),
            Some(_) => return None,
            None => (s, None),
        };
        let (local, domain) = match bare.split_once('@') {
            Some((l, d)) if !l.is_empty() => (Some(l), d),
            Some(_) => return None,
            None => (None, bare),
        };
        if domain.is_empty() {
            return None;
        }
        Some(Self {
            local,
            domain,
            resource,
        })
    }

    /// The ConnectyCube account in the local part.
    pub fn account(&self) -> Option<(AppId, UserId)> {
        self.local.and_then(parse_username)
    }
}

/// `"<userId>-<appId>"` → ids (the SASL username and the JID local part).
pub fn parse_username(s: &str) -> Option<(AppId, UserId)> {
    let (u, a) = s.split_once('-')?;
    if !u.bytes().all(|b| b.is_ascii_digit()) || !a.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let user = UserId::new(u.parse().ok()?).ok()?;
    let app = AppId::new(a.parse().ok()?).ok()?;
    Some((app, user))
}

pub fn bare_jid(app: AppId, user: UserId, domain: &str) -> String {
    format!("{user}-{app}@{domain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let j = Jid::parse("7-42@localhost/abc/def").unwrap();
        assert_eq!(j.local, Some("7-42"));
        assert_eq!(j.domain, "localhost");
        assert_eq!(j.resource, Some("abc/def"));
        let (a, u) = j.account().unwrap();
        assert_eq!((a.get(), u.get()), (42, 7));
        assert_eq!(Jid::parse("localhost").unwrap().local, None);
        assert!(Jid::parse("@x").is_none());
        assert!(parse_username("7-x").is_none());
        assert!(parse_username("0-1").is_none());
        assert!(parse_username("7-42-1").is_none());
    }
}
