//! [`AccountStore`] on SQLite: apps, users and sessions.

use std::collections::HashMap;

use async_trait::async_trait;
use confab_core::clock::Millis;
use confab_core::model::{App, Session, User, UserFields, UserQuery};
use confab_core::{AppId, Error, Result, UserId};
use sqlx::{QueryBuilder, Sqlite};

use super::{db, SqliteStore};
use crate::{AccountStore, NewUser, UserKey};

/// Maps a unique-constraint failure to the field error ConnectyCube clients expect.
fn unique_violation(e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(d) = &e {
        if d.is_unique_violation() {
            let msg = d.message();
            for field in ["login", "email", "external_user_id"] {
                if msg.contains(&format!("users.{field}")) {
                    return Error::invalid(field, "has already been taken");
                }
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
fn push_user_fields(q: &mut QueryBuilder<'_, Sqlite>, f: &UserFields) {
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

fn push_in<'a, T>(q: &mut QueryBuilder<'a, Sqlite>, column: &str, values: &'a [T])
where
    T: 'a + sqlx::Encode<'a, Sqlite> + sqlx::Type<Sqlite> + Send + Sync + Clone,
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

#[async_trait]
impl AccountStore for SqliteStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(self.pool())
            .await
            .map_err(Error::internal)?;
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
        let _write = self.write.lock().await;
        sqlx::query_as::<_, AppRow>(
            "INSERT INTO apps (name, auth_key, auth_secret, api_key_hash, created_at) \
             VALUES (?, ?, ?, ?, ?) RETURNING id, name, auth_key, created_at",
        )
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
        sqlx::query_as::<_, AppRow>("SELECT id, name, auth_key, created_at FROM apps WHERE id = ?")
            .bind(id.get())
            .fetch_optional(&self.pool)
            .await
            .map(|r| r.map(App::from))
            .map_err(db)
    }

    async fn app_by_api_key(&self, api_key_hash: &[u8]) -> Result<Option<App>> {
        sqlx::query_as::<_, AppRow>(
            "SELECT id, name, auth_key, created_at FROM apps WHERE api_key_hash = ?",
        )
        .bind(api_key_hash)
        .fetch_optional(&self.pool)
        .await
        .map(|r| r.map(App::from))
        .map_err(db)
    }

    async fn app_by_auth_key(&self, auth_key: &str) -> Result<Option<App>> {
        sqlx::query_as::<_, AppRow>(
            "SELECT id, name, auth_key, created_at FROM apps WHERE auth_key = ?",
        )
        .bind(auth_key)
        .fetch_optional(&self.pool)
        .await
        .map(|r| r.map(App::from))
        .map_err(db)
    }

    async fn create_user(&self, user: NewUser) -> Result<User> {
        let _write = self.write.lock().await;
        let mut q = QueryBuilder::<Sqlite>::new(
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
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE app_id = "
        ));
        q.push_bind(app.get());
        match key {
            UserKey::Id(id) => q.push(" AND id = ").push_bind(id),
            UserKey::Login(l) => q.push(" AND login = ").push_bind(l),
            UserKey::Email(e) => q.push(" AND email = ").push_bind(e),
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
            "SELECT password_hash FROM users WHERE app_id = ? AND id = ?",
        )
        .bind(app.get())
        .bind(id.get())
        .fetch_optional(&self.pool)
        .await
        .map(Option::flatten)
        .map_err(db)
    }

    async fn list_users(&self, app: AppId, query: &UserQuery) -> Result<(Vec<User>, u64)> {
        fn filters<'a>(q: &mut QueryBuilder<'a, Sqlite>, app: AppId, f: &'a UserQuery) {
            q.push(" WHERE app_id = ").push_bind(app.get());
            if let Some(ids) = &f.ids {
                push_in(q, "id", ids);
            }
            if let Some(v) = &f.logins {
                push_in(q, "login", v);
            }
            if let Some(v) = &f.emails {
                push_in(q, "email", v);
            }
            if let Some(v) = &f.external_user_ids {
                push_in(q, "external_user_id", v);
            }
            if let Some(name) = &f.full_name {
                q.push(" AND full_name LIKE ")
                    .push_bind(format!("%{}%", name.replace(['%', '_'], "")));
            }
            if let Some(part) = &f.name_or_login {
                let pattern = format!("%{}%", part.replace(['%', '_'], ""));
                q.push(" AND (full_name LIKE ")
                    .push_bind(pattern.clone())
                    .push(" OR login LIKE ")
                    .push_bind(pattern)
                    .push(")");
            }
            if let Some(tags) = &f.tags {
                q.push(" AND (0");
                for t in tags {
                    q.push(" OR tags LIKE ").push_bind(format!("%,{t},%"));
                }
                q.push(")");
            }
        }
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM users");
        filters(&mut count, app, query);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {USER_COLUMNS} FROM users"));
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
        let _write = self.write.lock().await;
        let mut q = QueryBuilder::<Sqlite>::new("UPDATE users SET updated_at = ");
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

    async fn delete_app(&self, app: AppId) -> Result<bool> {
        let _write = self.write.lock().await;
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await.map_err(db)?;
        // Webhook rows name no subscription, so nothing cascades to them.
        sqlx::query("DELETE FROM push_outbox WHERE app_id = ?")
            .bind(app.get())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        // Users, sessions, dialogs and all that hangs off them go by ON DELETE CASCADE.
        let done = sqlx::query("DELETE FROM apps WHERE id = ?")
            .bind(app.get())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        conn.committed();
        Ok(done.rows_affected() > 0)
    }

    async fn delete_user(&self, app: AppId, id: UserId) -> Result<bool> {
        let _write = self.write.lock().await;
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM sessions WHERE app_id = ? AND user_id = ?")
            .bind(app.get())
            .bind(id.get())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let done = sqlx::query("DELETE FROM users WHERE app_id = ? AND id = ?")
            .bind(app.get())
            .bind(id.get())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        conn.committed();
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
        let _write = self.write.lock().await;
        let session = sqlx::query_as::<_, SessionRow>(
            "INSERT INTO sessions (app_id, user_id, token_hash, created_at, updated_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?) \
             RETURNING id, app_id, user_id, created_at, updated_at, expires_at",
        )
        .bind(app.get())
        .bind(user.map(UserId::get))
        .bind(token_hash)
        .bind(now)
        .bind(now)
        .bind(expires_at)
        .fetch_one(&self.pool)
        .await
        .map(Session::from)
        .map_err(db)?;
        if let Some(user) = user {
            self.record_request(user, now).await?;
        }
        Ok(session)
    }

    async fn session_by_token(&self, token_hash: &[u8], now: Millis) -> Result<Option<Session>> {
        // Every chat login with a token: read in place (see `sqlite_inline`).
        self.reads.run(|c| {
            let mut q = c.prepare_cached(
                "SELECT id, app_id, user_id, created_at, updated_at, expires_at FROM sessions \
                 WHERE token_hash = ?1 AND expires_at > ?2",
            )?;
            let mut rows = q.query(rusqlite::params![token_hash, now])?;
            let Some(r) = rows.next()? else {
                return Ok(None);
            };
            Ok(Some(Session::from(SessionRow {
                id: r.get(0)?,
                app_id: r.get(1)?,
                user_id: r.get(2)?,
                created_at: r.get(3)?,
                updated_at: r.get(4)?,
                expires_at: r.get(5)?,
            })))
        })
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
        // One statement per table and chunk (each statement is a trip to the driver's thread).
        let sessions: Vec<(i64, Millis)> = touches.iter().map(|(s, _, e)| (s.id, *e)).collect();
        let mut users: HashMap<i64, Millis> = HashMap::new();
        for (s, now, _) in touches {
            if let Some(u) = s.user_id {
                let t = users.entry(u.get()).or_insert(*now);
                *t = (*t).max(*now);
            }
        }
        let users: Vec<(i64, Millis)> = users.into_iter().collect();
        let _write = self.write.lock().await;
        let mut conn = self.write_conn().await?;
        let mut tx = conn.begin().await.map_err(db)?;
        // MAX: a late batch never shortens a session another node extended further.
        for chunk in sessions.chunks(TOUCH_CHUNK) {
            update_from_values(
                chunk,
                "UPDATE sessions SET expires_at = MAX(sessions.expires_at, v.x) FROM v WHERE sessions.id = v.id",
            )
            .build()
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        for chunk in users.chunks(TOUCH_CHUNK) {
            update_from_values(
                chunk,
                "UPDATE users SET last_request_at = MAX(COALESCE(users.last_request_at, 0), v.x) FROM v WHERE users.id = v.id",
            )
            .build()
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        conn.committed();
        Ok(())
    }

    async fn set_session_user(&self, id: i64, user: Option<UserId>, now: Millis) -> Result<()> {
        let _write = self.write.lock().await;
        sqlx::query("UPDATE sessions SET user_id = ?, updated_at = ? WHERE id = ?")
            .bind(user.map(UserId::get))
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        match user {
            Some(u) => self.record_request(u, now).await,
            None => Ok(()),
        }
    }

    async fn delete_session(&self, id: i64) -> Result<()> {
        let _write = self.write.lock().await;
        sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(db)
    }

    async fn purge_expired_sessions(&self, now: Millis) -> Result<u64> {
        let _write = self.write.lock().await;
        sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
            .bind(now)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(db)
    }
}

/// Rows per batched `UPDATE … FROM (VALUES …)`: two bound values each, far below SQLite's limit.
const TOUCH_CHUNK: usize = 500;

/// `WITH v(id, x) AS (VALUES (?, ?), …) <update>`: `update` joins `v` by id.
fn update_from_values<'a>(rows: &[(i64, Millis)], update: &str) -> QueryBuilder<'a, Sqlite> {
    let mut q = QueryBuilder::<Sqlite>::new("WITH v(id, x) AS (VALUES ");
    let mut sep = q.separated(", ");
    for (id, x) in rows {
        sep.push("(");
        sep.push_bind_unseparated(*id);
        sep.push_unseparated(", ");
        sep.push_bind_unseparated(*x);
        sep.push_unseparated(")");
    }
    q.push(") ");
    q.push(update);
    q
}
