//! The ChatServer face's own state, behind the domain: device sessions (its tokens) and the stable
//! ids it shows for the domain's dialogs and messages (UUIDs and integers instead of ObjectIds).
//! Users, chats and messages themselves are the domain's ([`crate::Accounts`], [`crate::Chat`]).

use std::sync::Arc;

use base64::Engine;
use confab_core::clock::now_millis;
use confab_core::{AppId, Error, ErrorKind, ObjectId, Result, UserId};
use confab_store::{
    ChatFlags, ChatKey, ChatServerStore, Contact, DeviceSession, FileNaming, Media,
};
use rand::RngCore;

use crate::secrets::{hash_password, token_hash, verify_password};

pub struct ChatServerState {
    store: Arc<dyn ChatServerStore>,
    /// Told when a user's block flags on a group change.
    blocks: Arc<crate::group_blocks::GroupBlocks>,
}

/// A random version-4 UUID, upper case as Swift writes it.
pub fn new_uuid() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    uuid_text(b, 4)
}

/// The same UUID (version 5, name-based) every time for the same name.
pub fn name_uuid(name: &str) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&token_hash(name)[..16]);
    uuid_text(b, 5)
}

/// 16 bytes as an upper-case UUID of `version`, RFC 4122 variant.
fn uuid_text(mut b: [u8; 16], version: u8) -> String {
    b[6] = (b[6] & 0x0f) | (version << 4);
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode_upper(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A UUID in either case, upper-cased; `None` when it is not one.
pub fn parse_uuid(s: &str) -> Option<String> {
    let ok = s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    ok.then(|| s.to_ascii_uppercase())
}

impl ChatServerState {
    pub fn new(
        store: Arc<dyn ChatServerStore>,
        blocks: Arc<crate::group_blocks::GroupBlocks>,
    ) -> Self {
        Self { store, blocks }
    }

    /// A new device session for the user; returns it with its access token (44 characters of
    /// base64 over 32 random bytes), which is stored only as a hash.
    pub async fn open_device_session(
        &self,
        app: AppId,
        user: UserId,
        device_info: String,
        ip_address: Option<String>,
    ) -> Result<(DeviceSession, String)> {
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        let token = base64::engine::general_purpose::STANDARD.encode(raw);
        let now = now_millis();
        let session = DeviceSession {
            id: new_uuid(),
            app_id: app,
            user_id: user,
            device_info,
            ip_address,
            created_at: now,
            updated_at: now,
        };
        self.store
            .create_device_session(&session, &token_hash(&token))
            .await?;
        Ok((session, token))
    }

    /// The session of an access token of `app`; `Unauthenticated` otherwise.
    pub async fn authenticate(&self, app: AppId, token: &str) -> Result<DeviceSession> {
        let unauthorized = || Error::new(ErrorKind::Unauthenticated, "Unauthorized");
        if token.is_empty() || token.len() > 256 {
            return Err(unauthorized());
        }
        match self
            .store
            .device_session_by_token(&token_hash(token))
            .await?
        {
            Some(s) if s.app_id == app => Ok(s),
            _ => Err(unauthorized()),
        }
    }

    /// Replaces the `DeviceInfo` of a session.
    pub async fn update_device(&self, session: &str, device_info: &str) -> Result<()> {
        if self
            .store
            .update_device_info(session, device_info, now_millis())
            .await?
        {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::Unauthenticated, "Unauthorized"))
        }
    }

    pub async fn device_sessions(&self, app: AppId, user: UserId) -> Result<Vec<DeviceSession>> {
        self.store.device_sessions_of(app, user).await
    }

    /// Ends the user's oldest device sessions, never `newest`, so that at most `keep` are left;
    /// returns the ids of those ended (their sockets must close).
    pub async fn keep_newest_sessions(
        &self,
        app: AppId,
        user: UserId,
        keep: usize,
        newest: &str,
    ) -> Result<Vec<String>> {
        let sessions = self.store.device_sessions_of(app, user).await?;
        let excess = sessions.len().saturating_sub(keep);
        let mut ended = Vec::with_capacity(excess);
        let older = sessions.into_iter().filter(|s| s.id != newest);
        for s in older.take(excess) {
            if self.store.delete_device_session(&s.id).await? {
                ended.push(s.id);
            }
        }
        Ok(ended)
    }

    /// Logout: every device session of the user ends.
    pub async fn close_device_sessions(&self, app: AppId, user: UserId) -> Result<u64> {
        self.store.delete_device_sessions_of(app, user).await
    }

    /// Sets the user's account key (kept as an Argon2 hash, like passwords).
    pub async fn set_account_key(&self, app: AppId, user: UserId, key: String) -> Result<()> {
        let hash = hash_password(key).await?;
        self.store
            .set_account_key_hash(app, user, &hash, now_millis())
            .await
    }

    /// Whether `key` is the user's account key (`false` when none was set).
    pub async fn account_key_matches(&self, app: AppId, user: UserId, key: String) -> Result<bool> {
        Ok(match self.store.account_key_hash(app, user).await? {
            Some(hash) => verify_password(key, hash).await,
            None => false,
        })
    }

    /// The chat UUID of each dialog, given on first sight and stable after.
    pub async fn chat_uuids(&self, app: AppId, dialogs: &[ObjectId]) -> Result<Vec<String>> {
        let pairs: Vec<(ObjectId, String)> = dialogs.iter().map(|d| (*d, new_uuid())).collect();
        self.store.chat_uuids(app, &pairs).await
    }

    pub async fn chat_uuid(&self, app: AppId, dialog: ObjectId) -> Result<String> {
        let mut v = self.chat_uuids(app, &[dialog]).await?;
        Ok(v.pop().unwrap_or_default())
    }

    /// Names a dialog created on this face, remembering its participants for dedupe.
    pub async fn remember_chat(
        &self,
        app: AppId,
        dialog: ObjectId,
        key: &ChatKey,
    ) -> Result<String> {
        self.store.set_chat_key(app, dialog, &new_uuid(), key).await
    }

    /// Dialogs earlier created on this face with the same participants, newest first.
    pub async fn chats_with_key(&self, app: AppId, key: &ChatKey) -> Result<Vec<ObjectId>> {
        self.store.dialogs_by_chat_key(app, key).await
    }

    /// The dialog a chat UUID (either case) names.
    pub async fn dialog_of(&self, app: AppId, uuid: &str) -> Result<Option<ObjectId>> {
        match parse_uuid(uuid) {
            Some(u) => self.store.dialog_of_chat(app, &u).await,
            None => Ok(None),
        }
    }

    /// Integer ids of messages, given on first sight (in the order given) and stable after.
    pub async fn message_numbers(&self, app: AppId, messages: &[ObjectId]) -> Result<Vec<i64>> {
        self.store.message_numbers(app, messages).await
    }

    pub async fn message_of(&self, app: AppId, number: i64) -> Result<Option<ObjectId>> {
        self.store.message_of_number(app, number).await
    }

    /// Makes a message posted invisible visible (it cannot be hidden again, as in the original).
    pub async fn show_message(&self, app: AppId, number: i64) -> Result<bool> {
        self.store.show_message(app, number).await
    }

    /// Of these integer ids, those made visible after posting.
    pub async fn shown_messages(&self, app: AppId, numbers: &[i64]) -> Result<Vec<i64>> {
        self.store.shown_messages(app, numbers).await
    }

    /// Sets a user's "about" text; an empty one clears it.
    pub async fn set_about(&self, app: AppId, user: UserId, about: &str) -> Result<()> {
        let about = Some(about).filter(|a| !a.is_empty());
        self.store.set_about(app, user, about).await
    }

    pub async fn about(&self, app: AppId, user: UserId) -> Result<Option<String>> {
        self.store.about(app, user).await
    }

    /// Adds a picture; `false` when its id is taken.
    pub async fn add_media(&self, media: &Media) -> Result<bool> {
        self.store.add_media(media).await
    }

    pub async fn media(&self, app: AppId, id: &str) -> Result<Option<Media>> {
        self.store.media(app, id).await
    }

    pub async fn media_of(&self, app: AppId, owners: &[String]) -> Result<Vec<Media>> {
        self.store.media_of(app, owners).await
    }

    pub async fn delete_media(&self, app: AppId, id: &str) -> Result<Option<Media>> {
        self.store.delete_media(app, id).await
    }

    /// Adds `user` to `owner`'s contacts (the existing contact when there is one).
    pub async fn add_contact(
        &self,
        app: AppId,
        owner: UserId,
        user: UserId,
        name: Option<String>,
        is_favorite: bool,
        is_blocked: bool,
    ) -> Result<Contact> {
        let contact = Contact {
            id: new_uuid(),
            app_id: app,
            owner,
            user,
            name,
            is_favorite,
            is_blocked,
            created_at: now_millis(),
        };
        self.store.add_contact(&contact).await
    }

    pub async fn contacts(&self, app: AppId, owner: UserId) -> Result<Vec<Contact>> {
        self.store.contacts_of(app, owner).await
    }

    /// `false` when the owner has no such contact.
    pub async fn delete_contact(&self, app: AppId, owner: UserId, id: &str) -> Result<bool> {
        match parse_uuid(id) {
            Some(id) => self.store.delete_contact(app, owner, &id).await,
            None => Ok(false),
        }
    }

    /// The user's archive and removed-on-device flags on each dialog.
    pub async fn chat_flags(
        &self,
        app: AppId,
        user: UserId,
        dialogs: &[ObjectId],
    ) -> Result<Vec<ChatFlags>> {
        self.store.chat_flags(app, user, dialogs).await
    }

    pub async fn set_chat_flags(
        &self,
        app: AppId,
        dialog: ObjectId,
        user: UserId,
        flags: ChatFlags,
    ) -> Result<()> {
        let r = self.store.set_chat_flags(app, dialog, user, flags).await;
        self.blocks.forget(dialog);
        r
    }

    /// Every user of the dialog with a flag set (blocks included).
    pub async fn dialog_chat_flags(
        &self,
        app: AppId,
        dialog: ObjectId,
    ) -> Result<Vec<(UserId, ChatFlags)>> {
        self.store.dialog_chat_flags(app, dialog).await
    }

    /// The blob an upload's name names.
    pub async fn file_blob(&self, app: AppId, name: &str) -> Result<Option<i64>> {
        self.store.file_blob(app, name).await
    }

    /// Names a blob unless the name is another user's (see [`FileNaming`]).
    pub async fn set_file_blob(&self, app: AppId, name: &str, blob: i64) -> Result<FileNaming> {
        self.store.set_file_blob(app, name, blob).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_v4_and_parse_in_either_case() {
        let u = new_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_eq!(parse_uuid(&u.to_lowercase()).as_deref(), Some(u.as_str()));
        assert!(parse_uuid("not-a-uuid").is_none());
        assert!(parse_uuid("E621E1F8-C36C-495A-93FC-0C247A3E6E5").is_none());
        let n = name_uuid("read:1:2");
        assert_eq!(n, name_uuid("read:1:2"));
        assert_ne!(n, name_uuid("read:1:3"));
        assert_eq!(
            (&n[14..15], parse_uuid(&n).as_deref()),
            ("5", Some(n.as_str()))
        );
    }
}
