//! confab's domain services: the business rules, once, for every protocol face.
//!
//! - [`accounts`]: applications, sessions and users (sign up, log in, profile, expiry).
//! - [`secrets`]: token and key generation, hashing of tokens and passwords.

pub mod accounts;
pub mod secrets;

pub use accounts::{Accounts, AccountsConfig, AuthContext, Credentials};
pub use confab_store::UserKey;
