//! confab's domain vocabulary, free of any I/O.
//!
//! - [`ids`]: validated newtypes for every identifier (apps, users, ObjectIds).
//! - [`error`]: the one protocol-neutral error every face renders in its own format.
//! - [`model`]: apps, users and sessions as the domain sees them.
//! - [`chat`]: dialogs, messages and the roles-and-privileges table.
//! - [`query`]: filter operators, sorting and paging of the chat API.
//! - [`jid`]: ConnectyCube JIDs (`<userId>-<appId>@<domain>`), how users are named in privacy lists
//!   and on the XMPP face.
//! - [`contacts`]: contact-list rows, privacy-list items and offline-queue entries.
//! - [`clock`]: timestamps, so every layer agrees on units and formatting.

pub mod chat;
pub mod clock;
pub mod contacts;
pub mod error;
pub mod ids;
pub mod jid;
pub mod model;
pub mod query;

pub use error::{Error, ErrorKind, Result};
pub use ids::{AppId, DialogId, MessageId, ObjectId, UserId};
