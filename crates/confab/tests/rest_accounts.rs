//! The ConnectyCube session and user API over real HTTP.

use confab_testkit as common;

use common::{no_session, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn health_and_json_suffix_are_optional() {
    let t = TestServer::start().await;
    let (s, _) = t.call(Method::GET, "/health", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let token = t.app_session().await;
    for path in ["/session.json", "/session"] {
        let (s, v) = t.call(Method::GET, path, Some(&token), None).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        assert_eq!(v["session"]["token"], json!(token));
        assert_eq!(v["session"]["application_id"], json!(t.app_id));
        assert_eq!(v["session"]["user_id"], json!(0));
    }
    t.stop().await;
}

#[tokio::test]
async fn signup_login_and_user_session() {
    let t = TestServer::start().await;
    let id = t.signup("alice").await;
    let (s, v) = t.user_session("alice", "password1").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["session"]["user_id"], json!(id));
    assert_eq!(v["session"]["user"]["login"], json!("alice"));
    assert!(v["session"]["user"].get("password").is_none());

    // By email too.
    let (s, v) = t
        .call(
            Method::POST,
            "/session",
            None,
            Some(json!({"application_id": t.app_id, "auth_key": t.auth_key,
                        "user": {"email": "alice@example.com", "password": "password1"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["session"]["user_id"], json!(id));

    let (s, v) = t.user_session("alice", "wrong-password").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["errors"].is_object());
    let (s, _) = t.user_session("nobody", "password1").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    t.stop().await;
}

#[tokio::test]
async fn signup_with_auth_key_header_and_duplicates() {
    let t = TestServer::start().await;
    let signup = |login: &str| {
        t.client
            .post(t.url("/users.json"))
            .header("CB-AuthKey", &t.auth_key)
            .json(
                &json!({"user": {"login": login, "password": "password1", "full_name": "Bob B",
                                    "custom_data": "{\"x\":1}", "tag_list": "red,blue"}}),
            )
    };
    let (s, v) = t.raw(signup("bob")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["user"]["full_name"], json!("Bob B"));
    assert_eq!(v["user"]["user_tags"], json!("red,blue"));
    assert_eq!(v["user"]["custom_data"], json!("{\"x\":1}"));
    let (s, v) = t.raw(signup("bob")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v, json!({"errors": {"login": ["has already been taken"]}}));
    // Logins are case-insensitive.
    let (s, _) = t.raw(signup("BOB")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // A wrong auth key is not a session.
    let (s, v) = t
        .raw(
            t.client
                .post(t.url("/users.json"))
                .header("CB-AuthKey", "nope")
                .json(&json!({"user": {"login": "carol", "password": "password1"}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v, no_session());

    // Validation errors name their fields.
    let token = t.app_session().await;
    let (s, v) = t
        .call(
            Method::POST,
            "/users",
            Some(&token),
            Some(json!({"user": {"login": "dave", "password": "short", "email": "not-an-email"}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["errors"]["password"].is_array(), "{v}");
    assert!(v["errors"]["email"].is_array(), "{v}");
    t.stop().await;
}

#[tokio::test]
async fn lookups_and_filtered_lists() {
    let t = TestServer::start().await;
    let a = t.signup("ann").await;
    let b = t.signup("ben").await;
    let c = t.signup("cat").await;
    let token = t.login("ann").await;

    let (s, v) = t
        .call(Method::GET, &format!("/users/{b}.json"), Some(&token), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["user"]["login"], json!("ben"));
    let (s, v) = t
        .call(
            Method::GET,
            "/users/by_login.json?login=cat",
            Some(&token),
            None,
        )
        .await;
    assert_eq!((s, v["user"]["id"].clone()), (StatusCode::OK, json!(c)));
    let (s, v) = t
        .call(
            Method::GET,
            "/users/by_email.json?email=ben%40example.com",
            Some(&token),
            None,
        )
        .await;
    assert_eq!((s, v["user"]["id"].clone()), (StatusCode::OK, json!(b)));
    let (s, _) = t
        .call(Method::GET, "/users/999999.json", Some(&token), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t
        .call(Method::GET, "/users/abc.json", Some(&token), None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // The SDK's array encoding, comma lists, paging and totals.
    let (s, v) = t
        .call(
            Method::GET,
            &format!("/users/v2.json?id%5Bin%5D%5B%5D={a}&id%5Bin%5D%5B%5D={c}&limit=10"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total_entries"], json!(2));
    let ids: Vec<i64> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![a, c]);
    let (_, v) = t
        .call(
            Method::GET,
            &format!("/users/v2?id[in]={a},{b},{c}&limit=1&skip=1"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(v["total_entries"], json!(3));
    assert_eq!(v["items"][0]["id"], json!(b));
    assert_eq!(
        (v["limit"].clone(), v["skip"].clone()),
        (json!(1), json!(1))
    );
    let (_, v) = t
        .call(Method::GET, "/users/v2?login=ben", Some(&token), None)
        .await;
    assert_eq!(v["items"][0]["id"], json!(b));
    assert_eq!(v["total_entries"], json!(1));

    // The deprecated list.
    let (s, v) = t
        .call(
            Method::GET,
            &format!("/users.json?filter%5B%5D=number%20id%20in%20{a}%2C{b}&per_page=10"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total_entries"], json!(2));
    assert_eq!(v["items"][1]["user"]["id"], json!(b));

    // Bad paging and operators are 400s.
    for bad in [
        "/users/v2?limit=1000",
        "/users/v2?limit=abc",
        "/users/v2?id[gt]=1",
        "/users/v2?id[in]=x",
    ] {
        let (s, v) = t.call(Method::GET, bad, Some(&token), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    t.stop().await;
}

#[tokio::test]
async fn update_self_and_password_change() {
    let t = TestServer::start().await;
    let me = t.signup("erin").await;
    let other = t.signup("finn").await;
    let token = t.login("erin").await;

    let (s, v) = t
        .call(
            Method::PUT,
            &format!("/users/{me}.json"),
            Some(&token),
            Some(json!({"user": {"full_name": "Erin E", "phone": "123", "tag_list": ["x", "y"]}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["user"]["full_name"], json!("Erin E"));
    assert_eq!(v["user"]["user_tags"], json!("x,y"));

    // Someone else's account is off limits.
    let (s, _) = t
        .call(
            Method::PUT,
            &format!("/users/{other}.json"),
            Some(&token),
            Some(json!({"user": {"full_name": "Hacked"}})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, v) = t
        .call(Method::GET, &format!("/users/{other}"), Some(&token), None)
        .await;
    assert_eq!(v["user"]["full_name"], json!(null));

    // A new password needs the right old one.
    let (s, v) = t
        .call(
            Method::PUT,
            &format!("/users/{me}"),
            Some(&token),
            Some(json!({"user": {"password": "newpassword"}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["errors"]["old_password"].is_array());
    let (s, _) = t
        .call(
            Method::PUT,
            &format!("/users/{me}"),
            Some(&token),
            Some(json!({"user": {"password": "newpassword", "old_password": "wrongwrong"}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        t.user_session("erin", "newpassword").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, _) = t
        .call(
            Method::PUT,
            &format!("/users/{me}"),
            Some(&token),
            Some(json!({"user": {"password": "newpassword", "old_password": "password1"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        t.user_session("erin", "newpassword").await.0,
        StatusCode::OK
    );
    assert_eq!(
        t.user_session("erin", "password1").await.0,
        StatusCode::UNAUTHORIZED
    );

    // Taking another user's login is a field error.
    let (s, v) = t
        .call(
            Method::PUT,
            &format!("/users/{me}"),
            Some(&token),
            Some(json!({"user": {"login": "finn"}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v, json!({"errors": {"login": ["has already been taken"]}}));
    t.stop().await;
}

#[tokio::test]
async fn login_logout_and_destroy_session() {
    let t = TestServer::start().await;
    let me = t.signup("gail").await;
    let token = t.app_session().await;

    // An application session cannot act as a user.
    let (s, _) = t
        .call(
            Method::PUT,
            &format!("/users/{me}"),
            Some(&token),
            Some(json!({"user": {"full_name": "G"}})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let (s, v) = t
        .call(
            Method::POST,
            "/login.json",
            Some(&token),
            Some(json!({"login": "gail", "password": "password1"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["user"]["id"], json!(me));
    let (_, v) = t
        .call(Method::GET, "/session.json", Some(&token), None)
        .await;
    assert_eq!(v["session"]["user_id"], json!(me));
    let (s, _) = t
        .call(
            Method::PUT,
            &format!("/users/{me}"),
            Some(&token),
            Some(json!({"user": {"full_name": "G"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    let (s, _) = t
        .call(Method::DELETE, "/login.json", Some(&token), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = t
        .call(Method::GET, "/session.json", Some(&token), None)
        .await;
    assert_eq!(v["session"]["user_id"], json!(0));

    let (s, v) = t
        .call(Method::DELETE, "/session.json", Some(&token), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(v.is_object());
    let (s, v) = t
        .call(Method::GET, "/session.json", Some(&token), None)
        .await;
    assert_eq!((s, v), (StatusCode::UNAUTHORIZED, no_session()));
    t.stop().await;
}

#[tokio::test]
async fn delete_self_removes_user_and_sessions() {
    let t = TestServer::start().await;
    let me = t.signup("hank").await;
    let other = t.signup("iris").await;
    let token = t.login("hank").await;
    let (s, _) = t
        .raw(
            t.client
                .delete(t.url(&format!("/users/{other}.json")))
                .header("CB-Token", &token),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = t
        .call(
            Method::DELETE,
            &format!("/users/{me}.json"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = t
        .call(Method::GET, "/session.json", Some(&token), None)
        .await;
    assert_eq!((s, v), (StatusCode::UNAUTHORIZED, no_session()));
    assert_eq!(
        t.user_session("hank", "password1").await.0,
        StatusCode::UNAUTHORIZED
    );
    let viewer = t.login("iris").await;
    let (s, _) = t
        .call(Method::GET, &format!("/users/{me}"), Some(&viewer), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    t.stop().await;
}

#[tokio::test]
async fn sessions_expire_when_idle_and_requests_extend_them() {
    let t = TestServer::start_with(|c| c.session_ttl_secs = 2).await;
    t.signup("jack").await;
    let token = t.login("jack").await;
    // Keep it busy for longer than the TTL: every request extends it.
    for _ in 0..4 {
        tokio::time::sleep(std::time::Duration::from_millis(900)).await;
        let (s, _) = t
            .call(Method::GET, "/session.json", Some(&token), None)
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    tokio::time::sleep(std::time::Duration::from_millis(2600)).await;
    let (s, v) = t.call(Method::GET, "/users/v2", Some(&token), None).await;
    assert_eq!((s, v), (StatusCode::UNAUTHORIZED, no_session()));
    t.stop().await;
}

#[tokio::test]
async fn apps_are_isolated_and_new_apps_work_at_once() {
    let t = TestServer::start().await;
    let a_user = t.signup("kim").await;
    let a_token = t.login("kim").await;
    // Created while the server runs, through the same store.
    let (b_id, b_key) = t.second_app().await;
    let (s, v) = t
        .call(
            Method::POST,
            "/session.json",
            None,
            Some(json!({"application_id": b_id, "auth_key": b_key})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let b_token = v["session"]["token"].as_str().unwrap().to_string();

    // App B cannot see app A's user, by id, login or list.
    let (s, _) = t
        .call(
            Method::GET,
            &format!("/users/{a_user}"),
            Some(&b_token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v) = t
        .call(
            Method::GET,
            "/users/by_login?login=kim",
            Some(&b_token),
            None,
        )
        .await;
    assert!(v["errors"].is_object());
    let (_, v) = t
        .call(
            Method::GET,
            &format!("/users/v2?id[in]={a_user}"),
            Some(&b_token),
            None,
        )
        .await;
    assert_eq!(v["total_entries"], json!(0));
    // The same login can exist in app B; A's password does not open it.
    let (s, _) = t
        .call(Method::POST, "/session.json", None,
            Some(json!({"application_id": b_id, "auth_key": b_key, "user": {"login": "kim", "password": "password1"}})))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // App A's auth key does not open app B.
    let (s, _) = t
        .call(
            Method::POST,
            "/session.json",
            None,
            Some(json!({"application_id": b_id, "auth_key": t.auth_key})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // App A's token still works only in app A.
    let (_, v) = t
        .call(Method::GET, "/session.json", Some(&a_token), None)
        .await;
    assert_eq!(v["session"]["application_id"], json!(t.app_id));
    t.stop().await;
}

#[tokio::test]
async fn guest_sessions_create_guest_users() {
    let t = TestServer::start().await;
    let (s, v) = t
        .call(Method::POST, "/session.json", None,
            Some(json!({"application_id": t.app_id, "auth_key": t.auth_key, "user": {"guest": "1", "full_name": "Visitor"}})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["session"]["user_id"].as_i64().unwrap() > 0);
    assert_eq!(v["session"]["user"]["full_name"], json!("Visitor"));
    assert_eq!(v["session"]["user"]["is_guest"], json!(true));
    t.stop().await;
}

#[tokio::test]
async fn repeated_wrong_passwords_are_rate_limited() {
    let t = TestServer::start_with(|c| c.login_attempts_per_minute = 3).await;
    t.signup("lena").await;
    for _ in 0..3 {
        assert_eq!(
            t.user_session("lena", "wrongwrong").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (s, v) = t.user_session("lena", "password1").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert!(v["errors"]["base"].is_array());
    t.stop().await;
}

#[tokio::test]
async fn cors_preflight_allows_sdk_headers() {
    let t = TestServer::start().await;
    let resp = t
        .client
        .request(Method::OPTIONS, t.url("/session.json"))
        .header("Origin", "https://app.example.com")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "cb-token,cb-authkey,cb-sdk,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    for name in ["cb-token", "cb-authkey", "cb-sdk", "content-type"] {
        assert!(allowed.contains(name), "{allowed}");
    }
    t.stop().await;
}

#[tokio::test]
async fn server_restarts_on_the_same_data() {
    let mut t = TestServer::start().await;
    t.signup("mona").await;
    let token = t.login("mona").await;
    t.server.take().unwrap().shutdown().await;
    let server = confab::Server::start(t.config.clone()).await.unwrap();
    t.base = format!("http://{}", server.http_addr);
    t.server = Some(server);
    let (s, v) = t
        .call(Method::GET, "/session.json", Some(&token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(t.user_session("mona", "password1").await.0, StatusCode::OK);
    t.stop().await;
}
