//! [`AccountStore`] on PostgreSQL: apps, users and sessions.

use std::collections::BTreeMap;

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::model::{App, Session, User, UserFields, UserQuery};
use confab_core::{AppId, Error, Result, UserId};
use sqlx::{Postgres, QueryBuilder};

use super::{db, PgStore};
use crate::{AccountStore, NewUser, UserKey};

/// Maps a unique-constraint failure to the field error ConnectyCube clients expect, by the name
/// of the unique index that refused the row (see migrations/postgres/0001_accounts.sql).
fn unique_violation(e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(d) = &e {
        if d.is_unique_violation() {
            let field = match d.constraint() {
                Some("users_login") => Some("login"),
                Some("users_email") => Some("email"),
                Some("users_external") => Some("external_user_id"),
                _ => None,
            };
            if let Some(field) = field {
                return Error::invalid(field, "has already been taken");
            }
        }
    }
    db(e)
}

#[derive(sqlx::FromRow)]
struct AppRow {
    id: i64,
    name: String,
    auth_key: String,
    created_at: i64,
}

impl From<AppRow> for App {
    fn from(r: AppRow) -> Self {
        App {
            id: AppId::new(r.id).expect("stored app ids are positive"),
            name: r.name,
            auth_key: r.auth_key,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    app_id: i64,
    login: Option<String>,
    email: Option<String>,
    full_name: Option<String>,
    phone: Option<String>,
    website: Option<String>,
    external_user_id: Option<i64>,
    external_id: Option<String>,
    facebook_id: Option<String>,
    twitter_id: Option<String>,
    custom_data: Option<String>,
    blob_id: Option<i64>,
    avatar: Option<String>,
    timezone: Option<i64>,
    tags: String,
    is_guest: bool,
    created_at: i64,
    updated_at: i64,
    last_request_at: Option<i64>,
}

const USER_COLUMNS: &str =
    "id, app_id, login, email, full_name, phone, website, external_user_id, \
    external_id, facebook_id, twitter_id, custom_data, blob_id, avatar, timezone, tags, is_guest, \
    created_at, updated_at, last_request_at";

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            app_id: r.app_id,
            login: r.login,
            email: r.email,
            full_name: r.full_name,
            phone: r.phone,
            website: r.website,
            external_user_id: r.external_user_id,
            external_id: r.external_id,
            facebook_id: r.facebook_id,
            twitter_id: r.twitter_id,
            custom_data: r.custom_data,
            blob_id: r.blob_id,
            avatar: r.avatar,
            timezone: r.timezone,
            tags: decode_tags(&r.tags),
            is_guest: r.is_guest,
            created_at: r.created_at,
            updated_at: r.updated_at,
            last_request_at: r.last_request_at,
        }
    }
}

/// Tags are stored as `,a,b,` so one tag matches with `LIKE '%,a,%'`.
fn encode_tags(tags: &[String]) -> String {
    if tags.is_empty() {
        String::new()
    } else {
        format!(",{},", tags.join(","))
    }
}

fn decode_tags(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: i64,
    app_id: i64,
    user_id: Option<i64>,
    created_at: i64,
    updated_at: i64,
    expires_at: i64,
}

impl From<SessionRow> for Session {
    fn from(r: SessionRow) -> Self {
        Session {
            id: r.id,
            app_id: AppId::new(r.app_id).expect("stored app ids are positive"),
            user_id: r.user_id.and_then(|u| UserId::new(u).ok()),
            created_at: r.created_at,
            updated_at: r.updated_at,
            expires_at: r.expires_at,
        }
    }
}

/// Appends `SET`-list entries for each profile field that is present.
fn push_user_fields(q: &mut QueryBuilder<'_, Postgres>, f: &UserFields) {
    macro_rules! set {
        ($field:ident) => {
            if let Some(v) = &f.$field {
                q.push(concat!(", ", stringify!($field), " = "))
                    .push_bind(v.clone());
            }
        };
    }
    set!(login);
    set!(email);
    set!(full_name);
    set!(phone);
    set!(website);
    set!(external_user_id);
    set!(external_id);
    set!(facebook_id);
    set!(twitter_id);
    set!(custom_data);
    set!(blob_id);
    set!(avatar);
    set!(timezone);
    if let Some(tags) = &f.tags {
        q.push(", tags = ").push_bind(encode_tags(tags));
    }
}

fn push_in<'a, T>(q: &mut QueryBuilder<'a, Postgres>, column: &str, values: &'a [T])
where
    T: 'a + sqlx::Encode<'a, Postgres> + sqlx::Type<Postgres> + Send + Sync + Clone,
{
    q.push(format!(" AND {column} IN ("));
    let mut sep = q.separated(", ");
    for v in values {
        sep.push_bind(v.clone());
    }
    if values.is_empty() {
        sep.push("NULL");
    }
    q.push(")");
}

/// `lower(column) IN (lower($1), …)`: logins and emails compare case-insensitively, as SQLite's
/// COLLATE NOCASE columns do, and this is the expression the unique indexes are on.
fn push_in_nocase<'a>(q: &mut QueryBuilder<'a, Postgres>, column: &str, values: &'a [String]) {
    // The IS NOT NULL lets the planner use the partial unique index.
    q.push(format!(
        " AND {column} IS NOT NULL AND lower({column}) IN ("
    ));
    let mut sep = q.separated(", ");
    for v in values {
        sep.push("lower(");
        sep.push_bind_unseparated(v.as_str());
        sep.push_unseparated(")");
    }
    if values.is_empty() {
        sep.push("NULL");
    }
    q.push(")");
}

const APP_COLUMNS: &str = "id, name, auth_key, created_at";

const SESSION_COLUMNS: &str = "id, app_id, user_id, created_at, updated_at, expires_at";

#[async_trait]
impl AccountStore for PgStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn create_app(
        &self,
        name: &str,
        auth_key: &str,
        auth_secret: &str,
        api_key_hash: &[u8],
        now: Millis,
    ) -> Result<App> {
        sqlx::query_as::<_, AppRow>(&format!(
            "INSERT INTO apps (name, auth_key, auth_secret, api_key_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {APP_COLUMNS}"
        ))
        .bind(name)
        .bind(auth_key)
        .bind(auth_secret)
        .bind(api_key_hash)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map(App::from)
        .map_err(db)
    }

    async fn app(&self, id: AppId) -> Result<Option<App>> {
        sqlx::query_as::<_, AppRow>(&format!("SELECT {APP_COLUMNS} FROM apps WHERE id = $1"))
            .bind(id.get())
            .fetch_optional(&self.pool)
            .await
            .map(|r| r.map(App::from))
            .map_err(db)
    }

    async fn app_by_api_key(&self, api_key_hash: &[u8]) -> Result<Option<App>> {
        sqlx::query_as::<_, AppRow>(&format!(
            "SELECT {APP_COLUMNS} FROM apps WHERE api_key_hash = $1"
        ))
        .bind(api_key_hash)
        .fetch_optional(&self.pool)
        .await
        .map(|r| r.map(App::from))
        .map_err(db)
    }

    async fn app_by_auth_key(&self, auth_key: &str) -> Result<Option<App>> {
        sqlx::query_as::<_, AppRow>(&format!(
            "SELECT {APP_COLUMNS} FROM apps WHERE auth_key = $1"
        ))
        .bind(auth_key)
        .fetch_optional(&self.pool)
        .await
        .map(|r| r.map(App::from))
        .map_err(db)
    }

    async fn create_user(&self, user: NewUser) -> Result<User> {
        let mut q = QueryBuilder::<Postgres>::new(
            "INSERT INTO users (app_id, password_hash, is_guest, created_at, updated_at",
        );
        let f = &user.fields;
        // Build the column list and the value list from the same field set.
        let mut cols: Vec<&str> = Vec::new();
        macro_rules! col {
            ($field:ident) => {
                if f.$field.is_some() {
                    cols.push(stringify!($field));
                }
            };
        }
        col!(login);
        col!(email);
        col!(full_name);
        col!(phone);
        col!(website);
        col!(external_user_id);
        col!(external_id);
        col!(facebook_id);
        col!(twitter_id);
        col!(custom_data);
        col!(blob_id);
        col!(avatar);
        col!(timezone);
        if f.tags.is_some() {
            cols.push("tags");
        }
        for c in &cols {
            q.push(", ").push(*c);
        }
        q.push(") VALUES (")
            .push_bind(user.app_id)
            .push(", ")
            .push_bind(user.password_hash.clone())
            .push(", ")
            .push_bind(user.is_guest)
            .push(", ")
            .push_bind(user.now)
            .push(", ")
            .push_bind(user.now);
        macro_rules! val {
            ($field:ident) => {
                if let Some(v) = &f.$field {
                    q.push(", ").push_bind(v.clone());
                }
            };
        }
        val!(login);
        val!(email);
        val!(full_name);
        val!(phone);
        val!(website);
        val!(external_user_id);
        val!(external_id);
        val!(facebook_id);
        val!(twitter_id);
        val!(custom_data);
        val!(blob_id);
        val!(avatar);
        val!(timezone);
        if let Some(tags) = &f.tags {
            q.push(", ").push_bind(encode_tags(tags));
        }
        q.push(") RETURNING ").push(USER_COLUMNS);
        q.build_query_as::<UserRow>()
            .fetch_one(&self.pool)
            .await
            .map(User::from)
            .map_err(unique_violation)
    }

    async fn user(&self, app: AppId, key: UserKey) -> Result<Option<User>> {
        let mut q = QueryBuilder::<Postgres>::new(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE app_id = "
        ));
        q.push_bind(app.get());
        match key {
            UserKey::Id(id) => q.push(" AND id = ").push_bind(id),
            UserKey::Login(l) => q
                .push(" AND lower(login) = lower(")
                .push_bind(l)
                .push(") AND login IS NOT NULL"),
            UserKey::Email(e) => q
                .push(" AND lower(email) = lower(")
                .push_bind(e)
                .push(") AND email IS NOT NULL"),
            UserKey::ExternalUserId(x) => q.push(" AND external_user_id = ").push_bind(x),
        };
        q.build_query_as::<UserRow>()
            .fetch_optional(&self.pool)
            .await
            .map(|r| r.map(User::from))
            .map_err(db)
    }

    async fn user_password_hash(&self, app: AppId, id: UserId) -> Result<Option<String>> {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT password_hash FROM users WHERE app_id = $1 AND id = $2",
        )
        .bind(app.get())
        .bind(id.get())
        .fetch_optional(&self.pool)
        .await
        .map(Option::flatten)
        .map_err(db)
    }

    async fn list_users(&self, app: AppId, query: &UserQuery) -> Result<(Vec<User>, u64)> {
        fn filters<'a>(q: &mut QueryBuilder<'a, Postgres>, app: AppId, f: &'a UserQuery) {
            q.push(" WHERE app_id = ").push_bind(app.get());
            if let Some(ids) = &f.ids {
                push_in(q, "id", ids);
            }
            if let Some(v) = &f.logins {
                push_in_nocase(q, "login", v);
            }
            if let Some(v) = &f.emails {
                push_in_nocase(q, "email", v);
            }
            if let Some(v) = &f.external_user_ids {
                push_in(q, "external_user_id", v);
            }
            // ILIKE: SQLite's LIKE ignores (ASCII) case.
            if let Some(name) = &f.full_name {
                q.push(" AND full_name ILIKE ")
                    .push_bind(format!("%{}%", name.replace(['%', '_'], "")));
            }
            if let Some(part) = &f.name_or_login {
                let pattern = format!("%{}%", part.replace(['%', '_'], ""));
                q.push(" AND (full_name ILIKE ")
                    .push_bind(pattern.clone())
                    .push(" OR login ILIKE ")
                    .push_bind(pattern)
                    .push(")");
            }
            if let Some(tags) = &f.tags {
                q.push(" AND (FALSE");
                for t in tags {
                    q.push(" OR tags ILIKE ").push_bind(format!("%,{t},%"));
                }
                q.push(")");
            }
        }
        let mut count = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM users");
        filters(&mut count, app, query);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        let mut q = QueryBuilder::<Postgres>::new(format!("SELECT {USER_COLUMNS} FROM users"));
        filters(&mut q, app, query);
        q.push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(query.limit))
            .push(" OFFSET ")
            .push_bind(i64::from(query.skip));
        let rows = q
            .build_query_as::<UserRow>()
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        Ok((rows.into_iter().map(User::from).collect(), total as u64))
    }

    async fn update_user(
        &self,
        app: AppId,
        id: UserId,
        fields: &UserFields,
        password_hash: Option<&str>,
        now: Millis,
    ) -> Result<Option<User>> {
        let mut q = QueryBuilder::<Postgres>::new("UPDATE users SET updated_at = ");
        q.push_bind(now);
        push_user_fields(&mut q, fields);
        if let Some(h) = password_hash {
            q.push(", password_hash = ").push_bind(h.to_string());
        }
        q.push(" WHERE app_id = ")
            .push_bind(app.get())
            .push(" AND id = ")
            .push_bind(id.get())
            .push(" RETURNING ")
            .push(USER_COLUMNS);
        q.build_query_as::<UserRow>()
            .fetch_optional(&self.pool)
            .await
            .map(|r| r.map(User::from))
            .map_err(unique_violation)
    }

    async fn delete_user(&self, app: AppId, id: UserId) -> Result<bool> {
        // Sessions, blobs, subscriptions, queues and lists go by ON DELETE CASCADE.
        let done = sqlx::query("DELETE FROM users WHERE app_id = $1 AND id = $2")
            .bind(app.get())
            .bind(id.get())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_app(&self, app: AppId) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Webhook rows name no subscription, so nothing cascades to them.
        sqlx::query("DELETE FROM push_outbox WHERE app_id = $1")
            .bind(app.get())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        // Users, sessions, dialogs and all that hangs off them go by ON DELETE CASCADE.
        let done = sqlx::query("DELETE FROM apps WHERE id = $1")
            .bind(app.get())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_session(
        &self,
        app: AppId,
        user: Option<UserId>,
        token_hash: &[u8],
        now: Millis,
        expires_at: Millis,
    ) -> Result<Session> {
        // One statement: the session and the user's last request.
        sqlx::query_as::<_, SessionRow>(&format!(
            "WITH s AS (INSERT INTO sessions (app_id, user_id, token_hash, created_at, updated_at, expires_at) \
             VALUES ($1, $2, $3, $4, $4, $5) RETURNING {SESSION_COLUMNS}), \
             u AS (UPDATE users SET last_request_at = $4 WHERE id = $2) \
             SELECT {SESSION_COLUMNS} FROM s"
        ))
        .bind(app.get())
        .bind(user.map(UserId::get))
        .bind(token_hash)
        .bind(now)
        .bind(expires_at)
        .fetch_one(&self.pool)
        .await
        .map(Session::from)
        .map_err(db)
    }

    async fn session_by_token(&self, token_hash: &[u8], now: Millis) -> Result<Option<Session>> {
        sqlx::query_as::<_, SessionRow>(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1 AND expires_at > $2"
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map(|r| r.map(Session::from))
        .map_err(db)
    }

    async fn touch_session(
        &self,
        session: &Session,
        now: Millis,
        expires_at: Millis,
    ) -> Result<()> {
        self.touch_sessions(&[(session.clone(), now, expires_at)])
            .await
    }

    async fn touch_sessions(&self, touches: &[(Session, Millis, Millis)]) -> Result<()> {
        if touches.is_empty() {
            return Ok(());
        }
        // One row per id (an UPDATE … FROM with two rows for one id applies either), sorted, so
        // that two nodes touching the same rows lock them in the same order.
        let mut sessions: BTreeMap<i64, Millis> = BTreeMap::new();
        let mut users: BTreeMap<i64, Millis> = BTreeMap::new();
        for (s, now, expires_at) in touches {
            let e = sessions.entry(s.id).or_insert(*expires_at);
            *e = (*e).max(*expires_at);
            if let Some(u) = s.user_id {
                let t = users.entry(u.get()).or_insert(*now);
                *t = (*t).max(*now);
            }
        }
        let (session_ids, expiries): (Vec<i64>, Vec<Millis>) = sessions.into_iter().unzip();
        let (user_ids, times): (Vec<i64>, Vec<Millis>) = users.into_iter().unzip();
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Rows are locked in id order first (sessions, then users, as everywhere here): two
        // nodes touching the same user's sessions at once queue instead of deadlocking. The
        // UPDATE … FROM that follows may visit rows in any order.
        for (lock, update, ids, values) in [
            (
                "SELECT 1 FROM sessions WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
                // GREATEST: a late batch never shortens a session another node extended further.
                "UPDATE sessions SET expires_at = GREATEST(sessions.expires_at, v.x) \
                 FROM UNNEST($1::bigint[], $2::bigint[]) AS v(id, x) WHERE sessions.id = v.id",
                &session_ids,
                &expiries,
            ),
            (
                "SELECT 1 FROM users WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
                "UPDATE users SET last_request_at = GREATEST(COALESCE(users.last_request_at, 0), v.x) \
                 FROM UNNEST($1::bigint[], $2::bigint[]) AS v(id, x) WHERE users.id = v.id",
                &user_ids,
                &times,
            ),
        ] {
            if ids.is_empty() {
                continue;
            }
            sqlx::query(lock)
                .bind(ids)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            sqlx::query(update)
                .bind(ids)
                .bind(values)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn set_session_user(&self, id: i64, user: Option<UserId>, now: Millis) -> Result<()> {
        // The session, then the user: the order `touch_sessions` locks them in.
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("UPDATE sessions SET user_id = $1, updated_at = $2 WHERE id = $3")
            .bind(user.map(UserId::get))
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if let Some(user) = user {
            sqlx::query("UPDATE users SET last_request_at = $1 WHERE id = $2")
                .bind(now)
                .bind(user.get())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn delete_session(&self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(db)
    }

    async fn purge_expired_sessions(&self, now: Millis) -> Result<u64> {
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(db)
    }
}
