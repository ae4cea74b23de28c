//! The ChatServer face's users (spec §3) over real HTTP: the root, registration and its
//! validation, Basic login with a bare `DeviceInfo`, me, logout of every session, lookups that
//! need a token, and one account on both faces.
mod chatserver_common;

use chatserver_common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const NAME_ERROR: &str = "Name should consist of letters.";
const USERNAME_ERROR: &str = "Username should be at least 5 characters length, start with letter and consist of letters and digits.";
const PASSWORD_ERROR: &str = "Password should be at least 8 characters length.";

#[tokio::test]
async fn root_answers_and_api_prefix_is_an_alias() {
    let cs = Cs::start().await;
    let (s, v) = cs.call(Method::GET, "/", None, None).await;
    assert_eq!((s, v), (StatusCode::OK, json!("Chat Server v0.1.0")));
    let u = cs.register("aliasuser").await;
    let (s, v) = cs
        .call(Method::GET, "/api/users/me", Some(&u.token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["info"]["id"], json!(u.id));
    assert_error(
        cs.call(Method::GET, "/no/such/path", None, None).await,
        StatusCode::NOT_FOUND,
        "Not Found",
    );
}

async fn register(cs: &Cs, name: &str, username: &str, password: &str) -> (StatusCode, Value) {
    cs.call(
        Method::POST,
        "/users",
        None,
        Some(
            json!({"name": name, "username": username, "password": password,
                    "deviceInfo": device(1)}),
        ),
    )
    .await
}

#[tokio::test]
async fn registration_validates_and_logs_in() {
    let cs = Cs::start().await;
    for name in ["", "   ", "Bob!", "a_b"] {
        assert_error(
            register(&cs, name, "validname", "password1").await,
            StatusCode::BAD_REQUEST,
            NAME_ERROR,
        );
    }
    for username in ["abcd", "1abcde", "abc_def", "abcdefghijklmnopqrstuvwxyz"] {
        assert_error(
            register(&cs, "Bob", username, "password1").await,
            StatusCode::BAD_REQUEST,
            USERNAME_ERROR,
        );
    }
    for password in ["short77", "p234567890123456789012345x"] {
        assert_error(
            register(&cs, "Bob", "validname", password).await,
            StatusCode::BAD_REQUEST,
            PASSWORD_ERROR,
        );
    }
    // Malformed JSON and a missing deviceInfo are 400s with the error body.
    let (s, v) = cs
        .call_raw(Method::POST, "/users", None, "{\"name\":")
        .await;
    assert_eq!(
        (s, &v["error"]),
        (StatusCode::BAD_REQUEST, &json!(true)),
        "{v}"
    );
    let (s, v) = cs
        .call(
            Method::POST,
            "/users",
            None,
            Some(json!({"name": "Bob", "username": "validname", "password": "password1"})),
        )
        .await;
    assert_eq!(
        (s, &v["error"]),
        (StatusCode::BAD_REQUEST, &json!(true)),
        "{v}"
    );

    // Names are normalised, usernames lower-cased.
    let (s, v) = register(&cs, "  Bob   Smith ", "ValidName", "password1").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["info"]["name"], "Bob Smith");
    assert_eq!(v["info"]["username"], "validname");
    assert!(v["info"]["lastAccess"].as_str().unwrap().ends_with('Z'));
    let sessions = v["deviceSessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    let token = sessions[0]["accessToken"].as_str().unwrap();
    assert_eq!(token.len(), 44);
    assert_eq!(sessions[0]["deviceInfo"], device(1));
    assert_eq!(sessions[0]["id"].as_str().unwrap().len(), 36);
    // ISO-8601 without fractional seconds.
    let created = sessions[0]["createdAt"].as_str().unwrap();
    assert_eq!(created.len(), "2025-08-08T11:41:06Z".len(), "{created}");

    // A taken username is the client's error, not a 500, and nothing else was created.
    assert_error(
        register(&cs, "Other", "VALIDNAME", "password2").await,
        StatusCode::CONFLICT,
        "This username is already taken.",
    );
    let (s, v) = cs
        .call(Method::GET, "/users?s=validname", Some(token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn login_takes_basic_auth_and_a_bare_device_info() {
    let cs = Cs::start().await;
    let u = cs.register("loginuser").await;
    let (s, v) = cs.login("LoginUser", "password1", device(2)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["info"]["id"], json!(u.id));
    let sessions = v["deviceSessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "every login is a new session");
    // Only the new session's token is shown: the others are stored as hashes.
    let shown: Vec<&str> = sessions
        .iter()
        .map(|d| d["accessToken"].as_str().unwrap())
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(shown.len(), 1);
    assert_ne!(shown[0], u.token);
    let (s, _) = cs
        .call(Method::GET, "/users/me", Some(shown[0]), None)
        .await;
    assert_eq!(s, StatusCode::OK);

    assert_error(
        cs.login("loginuser", "wrongpassword", device(3)).await,
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
    );
    assert_error(
        cs.login("nosuchuser", "password1", device(3)).await,
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
    );
    // No Basic header at all.
    assert_error(
        cs.call(Method::POST, "/users/login", None, Some(device(3)))
            .await,
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
    );
    // The document's `{"deviceInfo": …}` wrapper is not what the code reads.
    let (s, v) = cs
        .login("loginuser", "password1", json!({"deviceInfo": device(3)}))
        .await;
    assert_eq!(
        (s, &v["error"]),
        (StatusCode::BAD_REQUEST, &json!(true)),
        "{v}"
    );
    let (_, me) = cs
        .call(Method::GET, "/users/me", Some(&u.token), None)
        .await;
    assert_eq!(
        me["deviceSessions"].as_array().unwrap().len(),
        2,
        "nothing added"
    );
}

#[tokio::test]
async fn me_needs_a_valid_token() {
    let cs = Cs::start().await;
    let u = cs.register("meuser1").await;
    let (s, v) = cs
        .call(Method::GET, "/users/me", Some(&u.token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["info"]["username"], "meuser1");
    assert_eq!(v["deviceSessions"][0]["accessToken"], json!(u.token));
    assert_error(
        cs.call(Method::GET, "/users/me", None, None).await,
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
    );
    assert_error(
        cs.call(Method::GET, "/users/me", Some("bm90IGEgdG9rZW4="), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
    );
}

#[tokio::test]
async fn logout_ends_every_session() {
    let cs = Cs::start().await;
    let u = cs.register("logoutuser").await;
    let (second, _) = cs.second_session(&u).await;
    let other = cs.register("stayuser").await;
    let (s, v) = cs
        .call(Method::POST, "/users/me/logout", Some(&second), None)
        .await;
    assert_eq!((s, v), (StatusCode::OK, Value::Null));
    for t in [&u.token, &second] {
        assert_error(
            cs.call(Method::GET, "/users/me", Some(t), None).await,
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
        );
    }
    let (s, _) = cs
        .call(Method::GET, "/users/me", Some(&other.token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "other users keep theirs");
    // The password still works: a new session.
    let (s, v) = cs.login("logoutuser", "password1", device(4)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["deviceSessions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn lookups_need_a_token() {
    let cs = Cs::start().await;
    let a = cs.register("lookera").await;
    let (s, v) = cs
        .call(
            Method::POST,
            "/users",
            None,
            Some(
                json!({"name": "Zed Findme", "username": "zedfind", "password": "password1",
                        "deviceInfo": device(1)}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let zed = v["info"]["id"].as_i64().unwrap();

    for path in [format!("/users/{zed}"), "/users?s=zed".into()] {
        assert_error(
            cs.call(Method::GET, &path, None, None).await,
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
        );
    }
    let (s, v) = cs
        .call(Method::GET, &format!("/users/{zed}"), Some(&a.token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["username"], "zedfind");
    assert_eq!(v["name"], "Zed Findme");
    assert!(v["lastAccess"].is_string());
    assert_eq!(
        cs.status(Method::GET, "/users/999999", &a.token).await,
        StatusCode::NOT_FOUND
    );

    // By part of the name (any case), by exact username, by id.
    for q in ["FINDM", "zedfind", &zed.to_string()] {
        let (s, v) = cs
            .call(Method::GET, &format!("/users?s={q}"), Some(&a.token), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{q}: {v}");
        let ids: Vec<i64> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [zed], "{q}");
    }
    let (s, v) = cs
        .call(Method::GET, "/users?search=zedfind", Some(&a.token), None)
        .await;
    assert_eq!((s, v.as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
    // Too short.
    assert_eq!(
        cs.call(Method::GET, "/users?s=z", Some(&a.token), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn one_account_on_both_faces() {
    let cs = Cs::start().await;
    let u = cs.register("bothfaces").await;
    // Registered here, logs in on the ConnectyCube face with the same password: the same id.
    let (s, v) = cs.ts.user_session("bothfaces", "password1").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["session"]["user_id"], json!(u.id));
    // Signed up there, logs in here.
    let cc_id = cs.ts.signup("ccsideuser").await;
    let (s, v) = cs.login("ccsideuser", "password1", device(1)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["info"]["id"], json!(cc_id));
    assert_eq!(v["info"]["username"], "ccsideuser");
}

#[tokio::test]
async fn the_face_needs_an_existing_app() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = confab_testkit::test_config(dir.path());
    config.chatserver_addr = Some("127.0.0.1:0".into());
    let err = confab::Server::start(config.clone())
        .await
        .err()
        .expect("no app id");
    assert!(
        format!("{:?}", err.source).contains("chatserver_app_id"),
        "{err:?}"
    );
    config.chatserver_app_id = Some(42);
    assert!(
        confab::Server::start(config.clone()).await.is_err(),
        "no such app"
    );
    // Off when the address is empty, as an unset variable.
    config.chatserver_addr = Some(String::new());
    let server = confab::Server::start(config).await.unwrap();
    assert!(server.chatserver_addr.is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn update_change_password_and_delete() {
    let cs = Cs::start().await;
    let u = cs.register("profile01").await;
    let (s, v) = cs
        .call(
            Method::PUT,
            "/users/me",
            Some(&u.token),
            Some(json!({"name": " New   Name ", "about": "hi"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "New Name");
    assert!(v["lastAccess"].is_string());
    assert_error(
        cs.call(
            Method::PUT,
            "/users/me",
            Some(&u.token),
            Some(json!({"name": "Bad!"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        NAME_ERROR,
    );
    let (_, me) = cs
        .call(Method::GET, "/users/me", Some(&u.token), None)
        .await;
    assert_eq!(me["info"]["name"], "New Name");

    // Password: the old one must match, the new one follow the rules.
    let change = |old: &str, new: &str| json!({"oldPassword": old, "newPassword": new});
    assert_error(
        cs.call(
            Method::PUT,
            "/users/me/changePassword",
            Some(&u.token),
            Some(change("wrongpass1", "newpassword1")),
        )
        .await,
        StatusCode::FORBIDDEN,
        "Invalid user or password.",
    );
    assert_error(
        cs.call(
            Method::PUT,
            "/users/me/changePassword",
            Some(&u.token),
            Some(change("password1", "short")),
        )
        .await,
        StatusCode::BAD_REQUEST,
        PASSWORD_ERROR,
    );
    let (s, v) = cs
        .call(
            Method::PUT,
            "/users/me/changePassword",
            Some(&u.token),
            Some(change("password1", "newpassword1")),
        )
        .await;
    assert_eq!((s, v), (StatusCode::OK, Value::Null));
    assert_eq!(
        cs.login("profile01", "password1", device(2)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        cs.login("profile01", "newpassword1", device(2)).await.0,
        StatusCode::OK
    );
    // On the other face too.
    assert_eq!(
        cs.ts.user_session("profile01", "newpassword1").await.0,
        StatusCode::OK
    );

    // Deleting the account ends it on both faces.
    assert_eq!(
        cs.status(Method::DELETE, "/users/me", &u.token).await,
        StatusCode::OK
    );
    assert_error(
        cs.call(Method::GET, "/users/me", Some(&u.token), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
    );
    assert_eq!(
        cs.ts.user_session("profile01", "newpassword1").await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn framework_errors_use_the_error_body_and_change_nothing() {
    let cs = Cs::start().await;
    let u = cs.register("bodylimit").await;
    let chat = cs
        .chat(&u.token, &[cs.register("bodyother").await.id], None)
        .await;
    let path = format!("/chats/{}/messages", chat["id"].as_str().unwrap());
    // Over max_body_bytes (1 MiB by default).
    let huge = json!({"localId": local_id(u.id), "text": "x".repeat(1_100_000)});
    assert_error(
        cs.call(Method::POST, &path, Some(&u.token), Some(huge))
            .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Payload Too Large",
    );
    assert_error(
        cs.call(Method::PATCH, "/users/me", Some(&u.token), None)
            .await,
        StatusCode::METHOD_NOT_ALLOWED,
        "Method Not Allowed",
    );
    let (s, v) = cs.call(Method::GET, &path, Some(&u.token), None).await;
    assert_eq!(
        (s, v),
        (StatusCode::OK, json!([])),
        "nothing stored, still serving"
    );
}

#[tokio::test]
async fn device_update_changes_only_the_callers_session() {
    let cs = Cs::start().await;
    let u = cs.register("devupdate").await;
    let (second, second_id) = cs.second_session(&u).await;
    let (s, v) = cs
        .call(
            Method::PUT,
            "/users/me/device",
            Some(&second),
            Some(json!({"deviceName": "Renamed", "deviceToken": "push-token"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let sessions = v["deviceSessions"].as_array().unwrap();
    let mine = sessions
        .iter()
        .find(|d| d["id"] == json!(second_id))
        .unwrap();
    assert_eq!(mine["deviceInfo"]["name"], "Renamed");
    assert_eq!(mine["deviceInfo"]["token"], "push-token");
    assert_eq!(mine["deviceInfo"]["model"], "Model");
    assert_eq!(mine["accessToken"], json!(second));
    let other = sessions
        .iter()
        .find(|d| d["id"] == json!(u.session))
        .unwrap();
    assert_eq!(other["deviceInfo"], device(1));
    let (s, v) = cs
        .call(
            Method::PUT,
            "/users/me/device",
            Some(&second),
            Some(json!({"deviceToken": "x"})),
        )
        .await;
    assert_eq!(
        (s, &v["error"]),
        (StatusCode::BAD_REQUEST, &json!(true)),
        "deviceName is required"
    );
}

#[tokio::test]
async fn account_key_resets_the_password() {
    let cs = Cs::start().await;
    let u = cs.register("keyuser01").await;
    let key = "k".repeat(30);
    let reset =
        |key: &str, new: &str| json!({"userId": u.id, "newPassword": new, "accountKey": key});
    // No key set yet.
    assert_error(
        cs.call(
            Method::POST,
            "/users/resetPassword",
            None,
            Some(reset(&key, "newpassword1")),
        )
        .await,
        StatusCode::FORBIDDEN,
        "Invalid user or account key.",
    );
    let set = |password: &str, key: &str| json!({"password": password, "accountKey": key});
    assert_error(
        cs.call(
            Method::PUT,
            "/users/me/setAccountKey",
            Some(&u.token),
            Some(set("password1", "short")),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "Account key should be between 25 and 100 characters long.",
    );
    assert_error(
        cs.call(
            Method::PUT,
            "/users/me/setAccountKey",
            Some(&u.token),
            Some(set("wrongpass1", &key)),
        )
        .await,
        StatusCode::FORBIDDEN,
        "Invalid user or password.",
    );
    assert_eq!(
        cs.call(
            Method::PUT,
            "/users/me/setAccountKey",
            None,
            Some(set("password1", &key))
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    let (s, _) = cs
        .call(
            Method::PUT,
            "/users/me/setAccountKey",
            Some(&u.token),
            Some(set("password1", &key)),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    assert_error(
        cs.call(
            Method::POST,
            "/users/resetPassword",
            None,
            Some(reset(&"x".repeat(30), "newpassword1")),
        )
        .await,
        StatusCode::FORBIDDEN,
        "Invalid user or account key.",
    );
    assert_error(
        cs.call(
            Method::POST,
            "/users/resetPassword",
            None,
            Some(reset(&key, "short")),
        )
        .await,
        StatusCode::BAD_REQUEST,
        PASSWORD_ERROR,
    );
    let (s, _) = cs
        .call(
            Method::POST,
            "/users/resetPassword",
            None,
            Some(json!({"userId": 999999, "newPassword": "newpassword1", "accountKey": key})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        cs.login("keyuser01", "password1", device(2)).await.0,
        StatusCode::OK,
        "unchanged so far"
    );

    let (s, _) = cs
        .call(
            Method::POST,
            "/users/resetPassword",
            None,
            Some(reset(&key, "newpassword1")),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        cs.login("keyuser01", "password1", device(2)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        cs.login("keyuser01", "newpassword1", device(2)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        cs.ts.user_session("keyuser01", "newpassword1").await.0,
        StatusCode::OK
    );
}

/// The face has the REST listener's rate limits: per Bearer token (and per address, off for
/// loopback unless asked), over them `429` with `Retry-After` and the error body, nothing handled.
#[tokio::test]
async fn requests_over_the_rate_get_429() {
    let cs = Cs::start_with(|c| {
        c.http_requests_per_sec_per_token = 1;
        c.http_burst_per_token = 3;
    })
    .await;
    let a = cs.register("ratelimit1").await;
    let b = cs.register("ratelimit2").await;
    for _ in 0..3 {
        assert_eq!(
            cs.status(Method::GET, "/users/me", &a.token).await,
            StatusCode::OK
        );
    }
    let resp = reqwest::Client::new()
        .get(format!("{}/users/me", cs.base))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    let (_, body) = read(resp).await;
    assert_eq!(body["error"], true);
    assert!(
        body["reason"].as_str().unwrap().contains("Too many"),
        "{body}"
    );
    // Another token is not affected.
    assert_eq!(
        cs.status(Method::GET, "/users/me", &b.token).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn about_is_kept_and_shown_in_full_info_only() {
    let cs = Cs::start().await;
    let u = cs.register("aboutuser").await;
    let other = cs.register("otheruser").await;
    let (s, v) = cs
        .call(
            Method::PUT,
            "/users/me",
            Some(&u.token),
            Some(json!({"about": " Likes tea "})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["about"], "Likes tea");
    assert_eq!(v["name"], "Test User");
    let (_, me) = cs
        .call(Method::GET, "/users/me", Some(&u.token), None)
        .await;
    assert_eq!(me["info"]["about"], "Likes tea");
    let (_, seen) = cs
        .call(
            Method::GET,
            &format!("/users/{}", u.id),
            Some(&other.token),
            None,
        )
        .await;
    assert_eq!(seen["about"], "Likes tea");
    // Search answers short infos: no about.
    let (_, found) = cs
        .call(Method::GET, "/users?s=aboutuser", Some(&other.token), None)
        .await;
    assert_eq!(found[0]["id"], json!(u.id));
    assert!(found[0].get("about").is_none(), "{found}");

    // A bad name, a too long about, malformed JSON or no token change nothing.
    assert_error(
        cs.call(
            Method::PUT,
            "/users/me",
            Some(&u.token),
            Some(json!({"name": "Bad!", "about": "changed"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        NAME_ERROR,
    );
    let (s, _) = cs
        .call(
            Method::PUT,
            "/users/me",
            Some(&u.token),
            Some(json!({"about": "x".repeat(2049)})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = cs
        .call_raw(Method::PUT, "/users/me", Some(&u.token), "{\"about\":")
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = cs
        .call(
            Method::PUT,
            "/users/me",
            Some("wrong"),
            Some(json!({"about": "changed"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, me) = cs
        .call(Method::GET, "/users/me", Some(&u.token), None)
        .await;
    assert_eq!(me["info"]["about"], "Likes tea");
    assert_eq!(me["info"]["name"], "Test User");

    // An empty about clears it.
    let (_, v) = cs
        .call(
            Method::PUT,
            "/users/me",
            Some(&u.token),
            Some(json!({"about": ""})),
        )
        .await;
    assert!(v.get("about").is_none(), "{v}");
}

#[tokio::test]
async fn photos_are_added_and_deleted_by_their_owner() {
    let cs = Cs::start().await;
    let u = cs.register("photouser").await;
    let other = cs.register("otheruser").await;
    let photo = |id: Option<&str>, kind: &str, size: i64| {
        let mut p = json!({"fileType": kind, "fileSize": size});
        if let Some(id) = id {
            p["id"] = json!(id);
        }
        json!({ "photo": p })
    };
    let add = |token: String, body: Value| {
        let cs = &cs;
        async move {
            cs.call(Method::POST, "/users/me/photos", Some(&token), Some(body))
                .await
        }
    };
    let id = uuid(1);
    let (s, v) = add(
        u.token.clone(),
        photo(Some(&id.to_lowercase()), "png", 1000),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["id"], json!(u.id));
    let photos = v["photos"].as_array().unwrap();
    assert_eq!(photos.len(), 1);
    assert_eq!(photos[0]["id"], json!(id));
    assert_eq!(photos[0]["fileType"], "png");
    assert_eq!(photos[0]["fileSize"], 1000);
    assert_eq!(
        (&photos[0]["previewWidth"], &photos[0]["previewHeight"]),
        (&json!(100), &json!(100))
    );
    // Everyone sees them in the full info.
    let (_, seen) = cs
        .call(
            Method::GET,
            &format!("/users/{}", u.id),
            Some(&other.token),
            None,
        )
        .await;
    assert_eq!(seen["photos"][0]["id"], json!(id));

    // The original's checks, in its order; none of them stores anything.
    assert_error(
        add(u.token.clone(), photo(None, "png", 10)).await,
        StatusCode::BAD_REQUEST,
        "Media resource id is missing.",
    );
    assert_error(
        add(u.token.clone(), photo(Some("not-a-uuid"), "png", 10)).await,
        StatusCode::BAD_REQUEST,
        "Media resource id is missing.",
    );
    for (kind, size) in [("", 10), ("png", 0), ("../png", 10)] {
        assert_error(
            add(u.token.clone(), photo(Some(&uuid(2)), kind, size)).await,
            StatusCode::BAD_REQUEST,
            "Media fileType or fileSize are missing.",
        );
    }
    let (s, _) = add(other.token.clone(), photo(Some(&id), "png", 10)).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = cs
        .call(
            Method::POST,
            "/users/me/photos",
            None,
            Some(photo(Some(&uuid(3)), "png", 10)),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = cs
        .call_raw(
            Method::POST,
            "/users/me/photos",
            Some(&u.token),
            "{\"photo\":",
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, me) = cs
        .call(Method::GET, "/users/me", Some(&u.token), None)
        .await;
    assert_eq!(me["info"]["photos"].as_array().unwrap().len(), 1);

    // Its uploads go with it.
    let (s, name) = cs
        .upload(Some(&u.token), Some(&id), Some("png"), "bytes".into())
        .await;
    assert_eq!(
        (s, name.as_str().unwrap()),
        (StatusCode::OK, &*format!("{id}.png"))
    );
    assert_eq!(cs.fetch_file(&format!("/{id}.png")).await.0, StatusCode::OK);

    // Only the owner deletes; unknown ids are 404.
    let path = format!("/users/me/photos/{id}");
    assert_error(
        cs.call(Method::DELETE, &path, Some(&other.token), None)
            .await,
        StatusCode::FORBIDDEN,
        "Forbidden",
    );
    assert_error(
        cs.call(
            Method::DELETE,
            &format!("/users/me/photos/{}", uuid(9)),
            Some(&u.token),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "Not Found",
    );
    assert_eq!(cs.fetch_file(&format!("/{id}.png")).await.0, StatusCode::OK);
    assert_eq!(
        cs.status(Method::DELETE, &path, &u.token).await,
        StatusCode::OK
    );
    let (_, me) = cs
        .call(Method::GET, "/users/me", Some(&u.token), None)
        .await;
    assert_eq!(me["info"]["photos"], json!([]));
    assert_eq!(
        cs.fetch_file(&format!("/{id}.png")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        cs.call(Method::DELETE, &path, Some(&u.token), None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn contacts_are_listed_added_once_and_deleted() {
    let cs = Cs::start().await;
    let u = cs.register("contacts1").await;
    let bob = cs.register("contacts2").await;
    let carol = cs.register("contacts3").await;
    let (s, v) = cs
        .call(Method::GET, "/users/me/contacts", Some(&u.token), None)
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!([])));

    // The document's short body is enough.
    let add = |token: String, body: Value| {
        let cs = &cs;
        async move {
            cs.call(Method::POST, "/users/me/contacts", Some(&token), Some(body))
                .await
        }
    };
    let (s, c) = add(
        u.token.clone(),
        json!({"name": "Bobby", "isFavorite": true, "user": {"id": bob.id}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["name"], "Bobby");
    assert_eq!(c["isFavorite"], true);
    assert_eq!(c["isBlocked"], false);
    assert_eq!(c["user"]["id"], json!(bob.id));
    assert_eq!(c["user"]["username"], "contacts2");
    let id = c["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36);
    // The original's full body works too; an existing contact comes back unchanged.
    let (s, again) = add(
        u.token.clone(),
        json!({"name": "Other", "isFavorite": false, "isBlocked": true,
               "user": {"id": bob.id, "name": "x", "username": "contacts2"}}),
    )
    .await;
    assert_eq!((s, &again), (StatusCode::OK, &c));
    let (_, c2) = add(u.token.clone(), json!({"user": {"id": carol.id}})).await;
    assert!(c2.get("name").is_none(), "{c2}");

    // Bad input adds nothing.
    assert_error(
        add(u.token.clone(), json!({"user": {"id": 999_999}})).await,
        StatusCode::NOT_FOUND,
        "User not found.",
    );
    let (s, _) = add(u.token.clone(), json!({"user": {"id": u.id}})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = add(u.token.clone(), json!({"name": "no user"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = cs
        .call_raw(Method::POST, "/users/me/contacts", Some(&u.token), "{")
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = cs
        .call(
            Method::POST,
            "/users/me/contacts",
            None,
            Some(json!({"user": {"id": bob.id}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, list) = cs
        .call(Method::GET, "/users/me/contacts", Some(&u.token), None)
        .await;
    assert_eq!(list, json!([c, c2]));
    let (_, theirs) = cs
        .call(Method::GET, "/users/me/contacts", Some(&bob.token), None)
        .await;
    assert_eq!(theirs, json!([]));

    // Only the owner deletes a contact; unknown ids are 404.
    let path = format!("/users/me/contacts/{id}");
    assert_error(
        cs.call(Method::DELETE, &path, Some(&bob.token), None).await,
        StatusCode::NOT_FOUND,
        "Contact not found.",
    );
    assert_error(
        cs.call(
            Method::DELETE,
            "/users/me/contacts/nope",
            Some(&u.token),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "Contact not found.",
    );
    assert_eq!(
        cs.status(Method::DELETE, &path, &u.token).await,
        StatusCode::OK
    );
    let (_, list) = cs
        .call(Method::GET, "/users/me/contacts", Some(&u.token), None)
        .await;
    assert_eq!(list, json!([c2]));
    assert_eq!(
        cs.call(Method::DELETE, &path, Some(&u.token), None).await.0,
        StatusCode::NOT_FOUND
    );
}
