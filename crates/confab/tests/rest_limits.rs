//! REST input bounds and rate limits, at their limits, over real sockets: one below the limit is
//! served, one over it is refused with a clear error and changes nothing.
use confab_testkit as common;

use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn base_error(v: &Value) -> String {
    v["errors"]["base"][0]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `POST /session` with extra query parameters: they are parsed (and ignored) by a route anyone
/// can call.
async fn session_with_query(ts: &TestServer, query: &str) -> (StatusCode, Value) {
    ts.raw(
        ts.client
            .post(ts.url(&format!("/session.json?{query}")))
            .json(&json!({"application_id": ts.app_id, "auth_key": ts.auth_key})),
    )
    .await
}

async fn session_with_form(ts: &TestServer, extra: &str) -> (StatusCode, Value) {
    ts.raw(
        ts.client
            .post(ts.url("/session.json"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!(
                "application_id={}&auth_key={}&{extra}",
                ts.app_id, ts.auth_key
            )),
    )
    .await
}

async fn session_with_json(ts: &TestServer, extra: Value) -> (StatusCode, Value) {
    ts.raw(
        ts.client
            .post(ts.url("/session.json"))
            .json(&json!({"application_id": ts.app_id, "auth_key": ts.auth_key, "extra": extra})),
    )
    .await
}

#[tokio::test]
async fn rack_parameter_depth_and_count_are_bounded() {
    let ts = TestServer::start_with(|c| {
        c.http_max_param_depth = 3;
        c.http_max_params = 6;
    })
    .await;
    // Depth: `a[b][c]` has 3 segments.
    let (s, v) = session_with_query(&ts, "a[b][c]=1").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = session_with_query(&ts, "a[b][c][d]=1").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(base_error(&v).contains("nested deeper than 3"), "{v}");
    let (s, v) = session_with_form(&ts, "a[b][c]=1").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = session_with_form(&ts, "a[b][c][d]=1").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    // Pairs: the form's own two plus four more make six.
    let (s, v) = session_with_form(&ts, "a=1&b=2&c=3&d=4").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = session_with_form(&ts, "a=1&b=2&c=3&d=4&e=5").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(base_error(&v), "More than 6 parameters");
    let (s, _) = session_with_query(&ts, "a=1&b=2&c=3&d=4&e=5&f=6").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = session_with_query(&ts, "a=1&b=2&c=3&d=4&e=5&f=6&g=7").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    ts.stop().await;
}

fn nested_json(depth: usize) -> Value {
    let mut v = json!(1);
    for i in 0..depth {
        v = if i % 2 == 0 {
            json!([v])
        } else {
            json!({ "k": v })
        };
    }
    v
}

#[tokio::test]
async fn json_body_depth_is_bounded() {
    let ts = TestServer::start_with(|c| c.http_max_json_depth = 5).await;
    // The body object is one level, `extra` adds the rest.
    let (s, v) = session_with_json(&ts, nested_json(4)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = session_with_json(&ts, nested_json(5)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(
        v,
        json!({"errors": {"base": ["JSON body nested deeper than 5"]}})
    );
    // Brackets inside strings are text, not nesting.
    let (s, v) = session_with_json(&ts, json!("[[[[[[[[{{{{{{")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    ts.stop().await;
}

/// With the defaults, a body nested far deeper than serde_json's own limit is a 400, and the
/// server goes on serving.
#[tokio::test]
async fn default_limits_refuse_hostile_nesting() {
    let ts = TestServer::start().await;
    let deep = format!("{}1{}", "[".repeat(500_000), "]".repeat(500_000));
    let body = format!(
        "{{\"application_id\":{},\"auth_key\":\"{}\",\"x\":{deep}}}",
        ts.app_id, ts.auth_key
    );
    let (s, v) = ts
        .raw(
            ts.client
                .post(ts.url("/session.json"))
                .header("Content-Type", "application/json")
                .body(body),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(base_error(&v), "JSON body nested deeper than 16");
    let (s, v) = session_with_json(&ts, nested_json(15)).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let key = format!("a{}", "[x]".repeat(10_000));
    let (s, _) = session_with_query(&ts, &format!("{key}=1")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let many = (0..1001).map(|i| format!("k{i}=1")).collect::<Vec<_>>();
    let (s, v) = session_with_form(&ts, &many.join("&")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    ts.stop().await;
}

async fn health(ts: &TestServer, token: Option<&str>) -> reqwest::Response {
    let mut req = ts.client.get(ts.url("/health"));
    if let Some(t) = token {
        req = req.header("CB-Token", t);
    }
    req.send().await.unwrap()
}

async fn assert_too_many(resp: reqwest::Response) {
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v,
        json!({"errors": {"base": ["Too many requests, try again later"]}})
    );
}

#[tokio::test]
async fn requests_per_address_are_limited_with_retry_after() {
    let ts = TestServer::start_with(|c| {
        c.http_requests_per_sec_per_ip = 1;
        c.http_burst_per_ip = 5;
        c.per_ip_limits_on_loopback = true;
    })
    .await;
    for i in 0..5 {
        assert_eq!(health(&ts, None).await.status(), StatusCode::OK, "{i}");
    }
    assert_too_many(health(&ts, None).await).await;
    // The refused request was not handled: a sign-up does not happen either.
    let (s, _) = ts
        .call(
            Method::POST,
            "/users.json",
            Some("0123"),
            Some(json!({"user": {"login": "x", "password": "password1"}})),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    // The bucket refills at the configured rate.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(health(&ts, None).await.status(), StatusCode::OK);
    ts.stop().await;
}

#[tokio::test]
async fn requests_per_token_are_limited() {
    let ts = TestServer::start_with(|c| {
        c.http_requests_per_sec_per_token = 1;
        c.http_burst_per_token = 4;
    })
    .await;
    let (_, token) = ts.user("alice").await;
    for i in 0..4 {
        let (s, v) = ts
            .call(Method::GET, "/session.json", Some(&token), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{i}: {v}");
    }
    assert_too_many(health(&ts, Some(&token)).await).await;
    // Another session of the same client is not affected, nor are calls without a token.
    let other = ts.login("alice").await;
    let (s, _) = ts
        .call(Method::GET, "/session.json", Some(&other), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(health(&ts, None).await.status(), StatusCode::OK);
    ts.stop().await;
}

/// Password attempts from one address are limited across logins (the per-login limit stays too).
#[tokio::test]
async fn password_attempts_per_address_are_limited() {
    let ts = TestServer::start_with(|c| {
        c.login_attempts_per_minute_per_ip = 3;
        c.per_ip_limits_on_loopback = true;
    })
    .await;
    for login in ["alice", "bob"] {
        ts.signup(login).await;
    }
    let (s, _) = ts.user_session("alice", "wrong-one").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = ts.user_session("bob", "wrong-two").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = ts.user_session("alice", "password1").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The fourth attempt, even with the right password for another login, waits.
    let (s, v) = ts.user_session("bob", "password1").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(base_error(&v), "Too many login attempts, try again later");
    // Application sessions need no password and are not counted.
    ts.app_session().await;
    ts.stop().await;
}

/// By default loopback clients (a reverse proxy on the same host, benchmarks) have no per-address
/// limits; other limits still apply to them.
#[tokio::test]
async fn loopback_has_no_per_address_limit_by_default() {
    let ts = TestServer::start_with(|c| {
        c.http_requests_per_sec_per_ip = 1;
        c.http_burst_per_ip = 1;
        c.login_attempts_per_minute_per_ip = 1;
    })
    .await;
    for _ in 0..5 {
        assert_eq!(health(&ts, None).await.status(), StatusCode::OK);
    }
    ts.signup("alice").await;
    for _ in 0..3 {
        ts.login("alice").await;
    }
    ts.stop().await;
}
