//! Full-text search over what a user may read, and the admin API's message listing.

use super::*;

impl Chat {
    /// `GET /chat/search`: messages through the full-text index, dialogs and users by name.
    pub async fn search(
        &self,
        app: AppId,
        user: UserId,
        search: MessageSearch,
        dialog_query: &Query,
    ) -> Result<SearchResults> {
        let messages = self.store.search_messages(&search).await?;
        let (dialogs, _) = self
            .list_dialogs(app, Actor::User(user.get()), dialog_query)
            .await?;
        let mut user_ids: BTreeSet<i64> = BTreeSet::new();
        for d in &dialogs {
            user_ids.extend(d.dialog.occupants_ids.iter().copied());
        }
        for m in &messages {
            user_ids.insert(m.sender_id);
        }
        let users = if user_ids.is_empty() {
            Vec::new()
        } else {
            let q = UserQuery {
                ids: Some(user_ids.into_iter().collect()),
                limit: 100,
                ..Default::default()
            };
            self.accounts.list_users(app, &q).await?.0
        };
        Ok(SearchResults {
            dialogs,
            messages,
            users,
        })
    }

    /// Admin API: every message of the app.
    pub async fn admin_messages(&self, app: AppId, query: &Query) -> Result<(Vec<Message>, u64)> {
        let app = app.get();
        self.store.list_app_messages(app, query).await
    }
}
