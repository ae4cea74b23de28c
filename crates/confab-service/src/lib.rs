//! confab's domain services: the business rules, once, for every protocol face.
//!
//! - [`accounts`]: applications, sessions and users (sign up, log in, profile, expiry).
//! - [`blobs`]: blobs (the SDK's storage module), their access rules and the filesystem backend.
//! - [`bus`]: domain events for the live faces ([`Bus`], in-process [`bus::LocalBus`]).
//! - [`chat`]: dialogs and messages under the roles-and-privileges table.
//! - [`chatserver`]: the ChatServer face's device sessions and its stable chat and message ids.
//! - [`cluster`]: which other nodes have sessions of a user, and handing a face's payload to one.
//! - [`history`]: what a live face records before it delivers (1:1 messages, markers, edits, deletes).
//! - [`limiter`]: keyed rate limiters that forget idle keys.
//! - [`offline`]: the offline queue (queue, claim, confirm, release).
//! - [`push`]: push subscriptions, events and chat alerts, queued in a durable outbox.
//! - [`privacy`]: privacy lists and the checks every delivery makes.
//! - [`send`]: sending over REST — the privacy rule, storage, then live delivery.
//! - [`rooms`]: membership snapshots of group/public/broadcast dialogs and their change events.
//! - [`roster`]: contact lists and their size limit.
//! - [`secrets`]: token and key generation, hashing of tokens and passwords.

pub mod accounts;
pub mod blobs;
pub mod bus;
pub mod chat;
pub mod chatserver;
pub mod cluster;
pub mod group_blocks;
pub mod history;
pub mod limiter;
pub mod offline;
pub mod privacy;
pub mod push;
pub mod rooms;
pub mod roster;
pub mod secrets;
pub mod send;
pub mod touches;

pub use accounts::{Accounts, AccountsConfig, AuthContext, Credentials};
pub use blobs::{Blobs, BlobsConfig};
pub use bus::{Bus, Event, LocalBus, MessageRead, Origin, Subscriber};
pub use chat::Chat;
pub use chatserver::ChatServerState;
pub use cluster::{Cluster, ClusterEvent, NodeHandler, NodeId, SingleNode};
pub use confab_store::chat::AdminDialogInfo;
pub use confab_store::{
    ChatFlags, ChatKey, Contact, DeviceSession, FileNaming, Media, MessageSearch, UserKey,
};
pub use offline::Offline;
pub use privacy::{ContactStores, MessageVerdict, Privacy};
pub use push::{Push, PushConfig};
pub use roster::Roster;
