//! confab's domain services: the business rules, once, for every protocol face.
//!
//! - [`accounts`]: applications, sessions and users (sign up, log in, profile, expiry).
//! - [`chat`]: dialogs and messages under the roles-and-privileges table.
//! - [`limiter`]: keyed rate limiters that forget idle keys.
//! - [`realtime`]: the seam through which REST changes reach live sessions.
//! - [`rooms`]: membership snapshots of group/public/broadcast dialogs and their change events.
//! - [`secrets`]: token and key generation, hashing of tokens and passwords.

pub mod accounts;
pub mod chat;
pub mod limiter;
pub mod realtime;
pub mod rooms;
pub mod secrets;
pub mod touches;

pub use accounts::{Accounts, AccountsConfig, AuthContext, Credentials};
pub use chat::Chat;
pub use confab_store::chat::AdminDialogInfo;
pub use confab_store::{MessageSearch, UserKey};
pub use realtime::Realtime;
