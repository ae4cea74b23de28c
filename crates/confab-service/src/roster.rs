//! Contact lists (RFC 6121 rosters): one row per (owner, contact) with the presence subscription,
//! and the subscription handshake (subscribe, approve, unsubscribe, cancel, remove) as state
//! changes on both users' rows.
//!
//! Rules kept here: each user has at most `max_contacts` visible contacts (ConnectyCube: 300); a new
//! one beyond that is `Forbidden` and nothing changes. A row that no longer says anything (not in
//! the roster, no pending request either way, no subscription) is deleted rather than kept. A user
//! whose privacy list blocks a contact's inbound presence never hears of that contact's request.
//!
//! Each handshake step returns what the live faces must do, in order ([`ContactEffect`]): push
//! changed rows to their owners, hand over subscription notices, share presence.

use std::sync::Arc;

use confab_core::clock::now_millis;
use confab_core::contacts::{RosterItem, Subscription};
use confab_core::{AppId, Error, ErrorKind, Result, UserId};
use confab_store::{AccountStore, RosterStore, UserKey};

use crate::privacy::{Check, Privacy};

/// A user of an app.
pub type Account = (AppId, UserId);

/// What a full contact list answers.
pub const CONTACTS_FULL: &str = "Maximum number of contacts reached";

/// A subscription notice one user's presence subscription handshake sends another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
}

impl Notice {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subscribe => "subscribe",
            Self::Subscribed => "subscribed",
            Self::Unsubscribe => "unsubscribe",
            Self::Unsubscribed => "unsubscribed",
        }
    }
}

/// What a handshake step asks of the live faces, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum ContactEffect {
    /// `owner`'s row changed (or, with `removed`, is gone): push it to their sessions.
    Push {
        owner: Account,
        item: RosterItem,
        removed: bool,
    },
    /// Hand `from`'s notice to `to`'s available sessions.
    Notice {
        from: Account,
        to: Account,
        notice: Notice,
    },
    /// Show `of`'s current presence to `to` (or, with `unavailable`, that it is gone).
    SharePresence {
        of: Account,
        to: Account,
        unavailable: bool,
    },
}

pub struct Roster {
    store: Arc<dyn RosterStore>,
    accounts: Arc<dyn AccountStore>,
    privacy: Arc<Privacy>,
    max_contacts: u32,
}

impl Roster {
    pub fn new(
        store: Arc<dyn RosterStore>,
        accounts: Arc<dyn AccountStore>,
        privacy: Arc<Privacy>,
        max_contacts: u32,
    ) -> Self {
        Self {
            store,
            accounts,
            privacy,
            max_contacts,
        }
    }

    /// Every row of `owner`, including the ones that only remember a pending inbound request.
    pub async fn rows(&self, owner: Account) -> Result<Vec<RosterItem>> {
        self.store.roster(owner.0, owner.1).await
    }

    pub async fn row(&self, owner: Account, contact: UserId) -> Result<Option<RosterItem>> {
        self.store.roster_item(owner.0, owner.1, contact).await
    }

    /// Writes a row whole (or deletes it when it says nothing any more); a new visible contact
    /// beyond the limit is `Forbidden` with [`CONTACTS_FULL`].
    pub async fn save(&self, owner: Account, item: &RosterItem) -> Result<()> {
        if !item.in_roster
            && !item.pending_in
            && !item.ask
            && item.subscription == Subscription::None
        {
            self.store
                .delete_roster_item(owner.0, owner.1, item.contact)
                .await?;
            return Ok(());
        }
        let fits = self
            .store
            .put_roster_item(owner.0, owner.1, item, self.max_contacts, now_millis())
            .await?;
        if fits {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::Forbidden, CONTACTS_FULL))
        }
    }

    /// Deletes a row. `false`: there was none.
    pub async fn delete(&self, owner: Account, contact: UserId) -> Result<bool> {
        self.store
            .delete_roster_item(owner.0, owner.1, contact)
            .await
    }

    /// Is `account` a user of its app (only users can be contacts)?
    pub async fn user_exists(&self, account: Account) -> Result<bool> {
        Ok(self
            .accounts
            .user(account.0, UserKey::Id(account.1.get()))
            .await?
            .is_some())
    }

    // ---- the subscription handshake (RFC 6121 §3) ----

    /// `user` asks to see `contact`'s presence.
    pub async fn subscribe(&self, user: Account, contact: Account) -> Result<Vec<ContactEffect>> {
        if !self.user_exists(contact).await? {
            return Err(Error::not_found("User not found"));
        }
        let mut out = Vec::new();
        let mut u = self
            .row(user, contact.1)
            .await?
            .unwrap_or_else(|| RosterItem::new(contact.1));
        if u.subscription.to() {
            // Already subscribed: the contact's server answers for them (§3.1.3).
            out.push(notice(contact, user, Notice::Subscribed));
            return Ok(out);
        }
        u.in_roster = true;
        u.ask = true;
        self.save(user, &u).await?;
        out.push(push(user, &u));
        let mut c = self.row(contact, user.1).await?.unwrap_or_else(|| {
            let mut r = RosterItem::new(user.1);
            r.in_roster = false;
            r
        });
        if c.subscription.from() {
            // The contact approved earlier (rows out of step): confirm at once.
            u.ask = false;
            u.subscription = Subscription::with(true, u.subscription.from());
            self.save(user, &u).await?;
            out.push(push(user, &u));
            out.push(notice(contact, user, Notice::Subscribed));
            out.push(share(contact, user, false));
            return Ok(out);
        }
        // A contact who blocks our presence-in never hears of the request.
        if self
            .privacy
            .denies(contact, user, None, Check::PresenceIn)
            .await?
        {
            return Ok(out);
        }
        c.pending_in = true;
        self.save(contact, &c).await?;
        if c.in_roster {
            out.push(push(contact, &c));
        }
        out.push(notice(user, contact, Notice::Subscribe));
        Ok(out)
    }

    /// `contact` approves `user`'s pending request to see `contact`'s presence (§3.1.5).
    /// Nothing pending: nothing happens (pre-approval is not supported).
    pub async fn approve(&self, contact: Account, user: Account) -> Result<Vec<ContactEffect>> {
        let mut out = Vec::new();
        let Some(mut c) = self.row(contact, user.1).await? else {
            return Ok(out);
        };
        if !c.pending_in {
            return Ok(out);
        }
        c.pending_in = false;
        c.in_roster = true;
        c.subscription = Subscription::with(c.subscription.to(), true);
        self.save(contact, &c).await?;
        out.push(push(contact, &c));
        if let Some(mut u) = self.row(user, contact.1).await? {
            u.ask = false;
            u.subscription = Subscription::with(true, u.subscription.from());
            self.save(user, &u).await?;
            out.push(push(user, &u));
        }
        out.push(notice(contact, user, Notice::Subscribed));
        out.push(share(contact, user, false));
        Ok(out)
    }

    /// `user` stops seeing `target`'s presence (§3.3).
    pub async fn unsubscribe(&self, user: Account, target: Account) -> Result<Vec<ContactEffect>> {
        let mut out = self.stop_seeing(user, target).await?;
        out.push(notice(user, target, Notice::Unsubscribe));
        Ok(out)
    }

    /// `user` stops `watcher` seeing `user`'s presence, or refuses their request (§3.2).
    pub async fn cancel(&self, user: Account, watcher: Account) -> Result<Vec<ContactEffect>> {
        let mut out = self.stop_seeing(watcher, user).await?;
        out.push(notice(user, watcher, Notice::Unsubscribed));
        Ok(out)
    }

    /// Roster remove (§2.5.2): subscriptions both ways are cancelled, then the row goes. `None`: it
    /// was not in the roster.
    pub async fn remove_contact(
        &self,
        owner: Account,
        contact: Account,
    ) -> Result<Option<Vec<ContactEffect>>> {
        let Some(item) = self.row(owner, contact.1).await? else {
            return Ok(None);
        };
        if !item.in_roster {
            return Ok(None);
        }
        let mut out = Vec::new();
        if item.subscription.to() || item.ask {
            out.extend(self.unsubscribe(owner, contact).await?);
        }
        if item.subscription.from() || item.pending_in {
            out.extend(self.cancel(owner, contact).await?);
        }
        self.delete(owner, contact.1).await?;
        out.push(ContactEffect::Push {
            owner,
            item,
            removed: true,
        });
        Ok(Some(out))
    }

    /// `watcher` no longer receives `target`'s presence: both rows change, and the watcher sees the
    /// target's resources go unavailable.
    async fn stop_seeing(&self, watcher: Account, target: Account) -> Result<Vec<ContactEffect>> {
        let mut out = Vec::new();
        let mut could_see = false;
        if let Some(mut w) = self.row(watcher, target.1).await? {
            could_see = w.subscription.to();
            w.subscription = Subscription::with(false, w.subscription.from());
            w.ask = false;
            self.save(watcher, &w).await?;
            if w.in_roster {
                out.push(push(watcher, &w));
            }
        }
        if let Some(mut t) = self.row(target, watcher.1).await? {
            t.subscription = Subscription::with(t.subscription.to(), false);
            t.pending_in = false;
            self.save(target, &t).await?;
            if t.in_roster {
                out.push(push(target, &t));
            }
        }
        if could_see {
            out.push(share(target, watcher, true));
        }
        Ok(out)
    }
}

fn push(owner: Account, item: &RosterItem) -> ContactEffect {
    ContactEffect::Push {
        owner,
        item: item.clone(),
        removed: false,
    }
}

fn notice(from: Account, to: Account, notice: Notice) -> ContactEffect {
    ContactEffect::Notice { from, to, notice }
}

fn share(of: Account, to: Account, unavailable: bool) -> ContactEffect {
    ContactEffect::SharePresence {
        of,
        to,
        unavailable,
    }
}
