//! Group blocks, a rule of every face: a member who blocked a group chat hears nothing of it, and
//! a member blocked in one (by its owner or an admin) may read it but neither post in it nor hear
//! it live. The ChatServer face sets them (its per-user chat flags); the domain's send path and
//! the XMPP rooms obey them too.
//!
//! Read for every group message, so each dialog's blocks are kept in memory for [`TTL`]: a change
//! made on this node holds at once, one made on another node within that time.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confab_core::{AppId, ObjectId, UserId};
use confab_store::ChatServerStore;

/// How long a dialog's blocks are trusted before they are read again.
const TTL: Duration = Duration::from_secs(1);
/// Dialogs kept at most; beyond it, entries past their time are dropped.
const MAX_CACHED: usize = 10_000;

/// The blocks of one group dialog.
#[derive(Debug, Default)]
pub struct Blocks {
    /// Members who hear nothing of the dialog: those who blocked it, and those blocked in it.
    pub deaf: HashSet<UserId>,
    /// Members blocked in the dialog: they may not post.
    pub mute: HashSet<UserId>,
}

pub struct GroupBlocks {
    store: Arc<dyn ChatServerStore>,
    cache: Mutex<HashMap<ObjectId, (Instant, Arc<Blocks>)>>,
}

impl GroupBlocks {
    pub fn new(store: Arc<dyn ChatServerStore>) -> Self {
        Self {
            store,
            cache: Mutex::default(),
        }
    }

    /// The dialog's blocks. A failed read counts as none (logged): the message it is read for may
    /// already be stored.
    pub async fn of(&self, app: AppId, dialog: ObjectId) -> Arc<Blocks> {
        if let Some((at, blocks)) = self.cache.lock().expect("blocks lock").get(&dialog) {
            if at.elapsed() < TTL {
                return blocks.clone();
            }
        }
        let blocks = match self.store.dialog_chat_flags(app, dialog).await {
            Ok(flags) => Arc::new(Blocks {
                deaf: flags
                    .iter()
                    .filter(|(_, f)| f.chat_blocked || f.user_blocked)
                    .map(|(u, _)| *u)
                    .collect(),
                mute: flags
                    .iter()
                    .filter(|(_, f)| f.user_blocked)
                    .map(|(u, _)| *u)
                    .collect(),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "group blocks unread; none applied");
                return Arc::default();
            }
        };
        let mut cache = self.cache.lock().expect("blocks lock");
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, (at, _)| at.elapsed() < TTL);
        }
        if cache.len() < MAX_CACHED {
            cache.insert(dialog, (Instant::now(), blocks.clone()));
        }
        blocks
    }

    /// The dialog's blocks changed here: read them again next time.
    pub fn forget(&self, dialog: ObjectId) {
        self.cache.lock().expect("blocks lock").remove(&dialog);
    }
}
