//! Privacy lists (XEP-0016 as ConnectyCube uses them): who may send to whom, for every face.
//!
//! Only the **default** list is enforced: the ConnectyCube SDK never activates a list per session
//! (spec §3.10). Semantics as ConnectyCube documents them (seed 002): the SDK's one-way block is an
//! item with `message`, `presence-in`, `presence-out` and `iq` flags, which blocks *inbound*
//! messages only, so the blocker can still write to the blocked user; its two-way (`mutualBlock`)
//! block is an item with no flags, which per XEP-0016 covers every stanza in both directions, so the
//! blocker cannot write either.
//!
//! Default lists are cached per user in memory (including "has none") and invalidated on every
//! change made through this service, so delivery does not read the database per message.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use confab_core::clock::now_millis;
use confab_core::jid::Jid;
use confab_core::{AppId, Error, ErrorKind, Result, UserId};
use confab_store::privacy::stanzas;
use confab_store::{PrivacyItem, PrivacyNames, PrivacyStore, RosterStore};

/// The stores behind privacy lists and contact lists (items of type `subscription` and `group`
/// read the owner's contact list).
pub trait ContactStores: PrivacyStore + RosterStore {}
impl<T: PrivacyStore + RosterStore> ContactStores for T {}

/// A user of an app.
pub type Account = (AppId, UserId);

/// Check flag for an outbound message: only items without flags ("everything") block it.
const MESSAGE_OUT: u8 = 16;

/// Cached default lists; beyond this many users the cache starts over (it refills on demand).
const CACHE_MAX: usize = 100_000;

/// A list longer than this is refused.
pub const MAX_ITEMS: usize = 1000;

/// Which stanza is being checked, from the list owner's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    MessageIn,
    MessageOut,
    PresenceIn,
    PresenceOut,
}

impl Check {
    fn flag(self) -> u8 {
        match self {
            Self::MessageIn => stanzas::MESSAGE,
            Self::MessageOut => MESSAGE_OUT,
            Self::PresenceIn => stanzas::PRESENCE_IN,
            Self::PresenceOut => stanzas::PRESENCE_OUT,
        }
    }
}

/// May a 1:1 message go from one user to another?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageVerdict {
    Deliver,
    /// The recipient's list blocks the sender (XMPP: `service-unavailable`).
    BlockedByRecipient,
    /// The sender's own two-way block covers the recipient (XMPP: `not-acceptable`).
    BlockedBySender,
}

impl MessageVerdict {
    /// The verdict as a domain error, for faces without a finer way to say it.
    pub fn into_result(self) -> Result<()> {
        match self {
            Self::Deliver => Ok(()),
            Self::BlockedByRecipient => Err(Error::forbidden(
                "The recipient's privacy list blocks messages from you",
            )),
            Self::BlockedBySender => Err(Error::forbidden(
                "Your privacy list blocks messages to this user",
            )),
        }
    }
}

/// What deleting a list did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListDeletion {
    Deleted,
    NotFound,
    /// It is the default list, so it stays (XEP-0016 §2.8 `conflict`).
    IsDefault,
}

type List = Option<Arc<Vec<PrivacyItem>>>;

/// Privacy lists: storage through [`ContactStores`], the default-list cache and every check.
pub struct Privacy {
    store: Arc<dyn ContactStores>,
    /// The chat domain, for items naming a bare domain.
    domain: String,
    cache: RwLock<DefaultLists>,
}

/// The cached default lists, and how many times one was invalidated.
#[derive(Default)]
struct DefaultLists {
    lists: HashMap<Account, List>,
    generation: u64,
}

/// What of a stored default list is enforced: a non-empty list, in `order` order (it is stored in
/// the client's order).
fn enforced(items: Option<Vec<PrivacyItem>>) -> List {
    items.filter(|l| !l.is_empty()).map(|mut l| {
        l.sort_by_key(|i| i.order);
        Arc::new(l)
    })
}

impl Privacy {
    pub fn new(store: Arc<dyn ContactStores>, domain: impl Into<String>) -> Self {
        Self {
            store,
            domain: domain.into(),
            cache: RwLock::default(),
        }
    }

    /// The stores (contact lists live next to privacy lists).
    pub fn stores(&self) -> &Arc<dyn ContactStores> {
        &self.store
    }

    /// The user's default list (cached).
    pub async fn default_list(&self, owner: Account) -> Result<List> {
        let generation = {
            let cache = self.cache.read().expect("privacy lock");
            if let Some(l) = cache.lists.get(&owner) {
                return Ok(l.clone());
            }
            cache.generation
        };
        let list = enforced(self.store.default_privacy_list(owner.0, owner.1).await?);
        let mut cache = self.cache.write().expect("privacy lock");
        if cache.generation == generation {
            if cache.lists.len() >= CACHE_MAX {
                cache.lists.clear();
            }
            cache.lists.insert(owner, list.clone());
        }
        Ok(list)
    }

    /// Reads the default lists of those of `users` the cache lacks, in one read. A node calls it
    /// for users who come online, here or on another node, so that their first messages do not
    /// each wait for a database read. Stops at a full cache: it is only a warm-up.
    pub async fn prefetch(&self, app: AppId, users: &[UserId]) -> Result<()> {
        let (missing, generation) = {
            let cache = self.cache.read().expect("privacy lock");
            let missing: Vec<UserId> = users
                .iter()
                .copied()
                .filter(|u| !cache.lists.contains_key(&(app, *u)))
                .collect();
            (missing, cache.generation)
        };
        if missing.is_empty() {
            return Ok(());
        }
        let mut found = self.store.default_privacy_lists(app, &missing).await?;
        let mut cache = self.cache.write().expect("privacy lock");
        if cache.generation != generation {
            return Ok(());
        }
        for user in missing {
            if cache.lists.len() >= CACHE_MAX {
                break;
            }
            cache
                .lists
                .insert((app, user), enforced(found.remove(&user)));
        }
        Ok(())
    }

    /// Whether `owner`'s default list (or that they have none) is cached, for diagnostics and tests.
    pub fn is_cached(&self, owner: Account) -> bool {
        let cache = self.cache.read().expect("privacy lock");
        cache.lists.contains_key(&owner)
    }

    /// Forgets the cached default list of `owner` (changed here, or on another node).
    pub fn invalidate(&self, owner: Account) {
        let mut cache = self.cache.write().expect("privacy lock");
        cache.lists.remove(&owner);
        // A read that began before this change must not cache what it read.
        cache.generation += 1;
    }

    /// Does `owner`'s default list deny `check` with `peer`? `peer_full` is the peer's full JID when
    /// known (inbound stanzas). Items of type `subscription` and `group` read the owner's contact.
    pub async fn denies(
        &self,
        owner: Account,
        peer: Account,
        peer_full: Option<&str>,
        check: Check,
    ) -> Result<bool> {
        let Some(list) = self.default_list(owner).await? else {
            return Ok(false);
        };
        let flag = check.flag();
        let mut roster_item = None;
        let mut roster_read = false;
        for item in list.iter() {
            let applies = item.stanzas == 0 || item.stanzas & flag != 0;
            if !applies {
                continue;
            }
            let matches = match item.kind.as_deref() {
                None => true,
                Some("jid") => item
                    .value
                    .as_deref()
                    .is_some_and(|v| jid_matches(v, peer, peer_full, &self.domain)),
                Some(kind @ ("subscription" | "group")) => {
                    if !roster_read {
                        roster_item = self.store.roster_item(owner.0, owner.1, peer.1).await?;
                        roster_read = true;
                    }
                    let value = item.value.as_deref().unwrap_or("");
                    match (&roster_item, kind) {
                        (Some(r), "subscription") if r.in_roster => {
                            r.subscription.as_str() == value
                        }
                        (None, "subscription") => value == "none",
                        (Some(r), "subscription") => !r.in_roster && value == "none",
                        (Some(r), _) => r.in_roster && r.groups.iter().any(|g| g == value),
                        (None, _) => false,
                    }
                }
                Some(_) => false,
            };
            if matches {
                return Ok(!item.allow);
            }
        }
        Ok(false)
    }

    /// The rule for every 1:1 message, whichever face it comes from: the recipient's list first
    /// (`from_full` is the sender's full JID when it has one), then the sender's two-way blocks.
    pub async fn message_verdict(
        &self,
        from: Account,
        from_full: Option<&str>,
        to: Account,
    ) -> Result<MessageVerdict> {
        if from == to {
            return Ok(MessageVerdict::Deliver);
        }
        if self.denies(to, from, from_full, Check::MessageIn).await? {
            return Ok(MessageVerdict::BlockedByRecipient);
        }
        if self.denies(from, to, None, Check::MessageOut).await? {
            return Ok(MessageVerdict::BlockedBySender);
        }
        Ok(MessageVerdict::Deliver)
    }

    /// Members who must not get `sender`'s group messages: those whose default list blocks the
    /// sender, and those the sender's list blocks (seed 002: a blocked user receives nothing from
    /// the blocker in a group). A failed check counts as "not blocked", as a group message is
    /// already stored when this runs.
    pub async fn blocked_in_group(
        &self,
        app: AppId,
        sender: UserId,
        members: impl IntoIterator<Item = UserId>,
    ) -> HashSet<UserId> {
        let mut out = HashSet::new();
        // Lists are cached, so after the first message this is two map lookups per member; the
        // per-pair rule walk runs only where a list exists.
        let sender_has_list = matches!(self.default_list((app, sender)).await, Ok(Some(_)));
        for member in members {
            if member == sender {
                continue;
            }
            let mine = sender_has_list
                && self
                    .denies((app, sender), (app, member), None, Check::MessageIn)
                    .await
                    .unwrap_or(false);
            let theirs = !mine
                && matches!(self.default_list((app, member)).await, Ok(Some(_)))
                && self
                    .denies((app, member), (app, sender), None, Check::MessageIn)
                    .await
                    .unwrap_or(false);
            if mine || theirs {
                out.insert(member);
            }
        }
        out
    }

    /// May `from`'s presence reach `to` (both users' lists)?
    pub async fn presence_allowed(&self, from: Account, from_full: &str, to: Account) -> bool {
        if from == to {
            return true;
        }
        let r = async {
            Ok::<_, Error>(
                !self.denies(from, to, None, Check::PresenceOut).await?
                    && !self
                        .denies(to, from, Some(from_full), Check::PresenceIn)
                        .await?,
            )
        };
        r.await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "privacy check failed; presence not sent");
            false
        })
    }

    // ---- the lists themselves ----

    pub async fn names(&self, owner: Account) -> Result<PrivacyNames> {
        self.store.privacy_names(owner.0, owner.1).await
    }

    pub async fn list(&self, owner: Account, name: &str) -> Result<Option<Vec<PrivacyItem>>> {
        self.store.privacy_list(owner.0, owner.1, name).await
    }

    /// Creates or replaces a list. Items must already be valid (see [`validate_items`]).
    pub async fn put_list(&self, owner: Account, name: &str, items: &[PrivacyItem]) -> Result<()> {
        validate_items(items)?;
        let r = self
            .store
            .put_privacy_list(owner.0, owner.1, name, items, now_millis())
            .await;
        self.invalidate(owner);
        r
    }

    /// Makes `name` the default list, or declines any default with `None`. `false`: no such list.
    pub async fn set_default(&self, owner: Account, name: Option<&str>) -> Result<bool> {
        let r = self
            .store
            .set_default_privacy_list(owner.0, owner.1, name)
            .await;
        self.invalidate(owner);
        r
    }

    /// Deletes a list. The default list cannot be removed while it is the default (ConnectyCube:
    /// "decline the current default list first").
    pub async fn delete_list(&self, owner: Account, name: &str) -> Result<ListDeletion> {
        if self.names(owner).await?.default.as_deref() == Some(name) {
            return Ok(ListDeletion::IsDefault);
        }
        if !self
            .store
            .delete_privacy_list(owner.0, owner.1, name)
            .await?
        {
            return Ok(ListDeletion::NotFound);
        }
        self.invalidate(owner);
        Ok(ListDeletion::Deleted)
    }
}

/// A list's rules: at most [`MAX_ITEMS`], unique `order` values, values that fit their type.
pub fn validate_items(items: &[PrivacyItem]) -> Result<()> {
    if items.len() > MAX_ITEMS {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!("a privacy list holds at most {MAX_ITEMS} items"),
        ));
    }
    let mut orders: Vec<u32> = items.iter().map(|i| i.order).collect();
    orders.sort_unstable();
    if orders.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::bad_request("privacy list items need unique orders"));
    }
    for i in items {
        let ok = match (i.kind.as_deref(), i.value.as_deref()) {
            (None, _) => true,
            (Some("jid"), Some(v)) => Jid::parse(v).is_some(),
            (Some("group"), Some(v)) => !v.is_empty(),
            (Some("subscription"), Some(v)) => matches!(v, "none" | "to" | "from" | "both"),
            _ => false,
        };
        if !ok || i.stanzas & !stanzas::ALL != 0 {
            return Err(Error::bad_request("malformed privacy list item"));
        }
    }
    Ok(())
}

/// XEP-0016 §2.1 JID matching. ConnectyCube JIDs name the account in the local part; the SDK builds
/// them with its configured chat host, which may differ from the server's domain name, so an item
/// naming an account matches that account whatever its domain.
fn jid_matches(value: &str, peer: Account, peer_full: Option<&str>, domain: &str) -> bool {
    let Some(v) = Jid::parse(value) else {
        return false;
    };
    match (v.account(), v.resource) {
        (Some(acc), None) => acc == peer,
        (Some(acc), Some(res)) => {
            acc == peer
                && peer_full
                    .and_then(|f| f.split_once('/'))
                    .is_some_and(|(_, r)| r == res)
        }
        // A bare domain: everyone on it (our users are all on our domain).
        (None, None) if v.local.is_none() => v.domain.eq_ignore_ascii_case(domain),
        _ => false,
    }
}
