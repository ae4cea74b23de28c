//! Contact lists (RFC 6121 rosters): one row per (owner, contact) with the presence subscription.
//!
//! The rule kept here: each user has at most `max_contacts` visible contacts (ConnectyCube: 300);
//! a new one beyond that is `Forbidden` and nothing changes. A row that no longer says anything
//! (not in the roster, no pending request either way, no subscription) is deleted rather than kept.

use std::sync::Arc;

use confab_core::clock::now_millis;
use confab_core::contacts::{RosterItem, Subscription};
use confab_core::{AppId, Error, ErrorKind, Result, UserId};
use confab_store::{AccountStore, RosterStore, UserKey};

/// A user of an app.
pub type Account = (AppId, UserId);

/// What a full contact list answers.
pub const CONTACTS_FULL: &str = "Maximum number of contacts reached";

pub struct Roster {
    store: Arc<dyn RosterStore>,
    accounts: Arc<dyn AccountStore>,
    max_contacts: u32,
}

impl Roster {
    pub fn new(
        store: Arc<dyn RosterStore>,
        accounts: Arc<dyn AccountStore>,
        max_contacts: u32,
    ) -> Self {
        Self {
            store,
            accounts,
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
}
