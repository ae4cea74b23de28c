//! Bad input gets a clear 4xx, changes nothing, and the server keeps serving.

use confab_testkit as common;

use common::{no_session, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn still_serving(t: &TestServer) {
    let (s, _) = t.call(Method::GET, "/health", None, None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn malformed_json_bodies() {
    let t = TestServer::start().await;
    let token = t.app_session().await;
    for body in [
        "{",
        "{\"user\":",
        "[1,2]",
        "\"str\"",
        "{\"user\": {\"login\": \"x\"}} trailing",
        "\u{0}\u{1}",
    ] {
        let (s, v) = t
            .raw(
                t.client
                    .post(t.url("/users.json"))
                    .header("CB-Token", &token)
                    .header("Content-Type", "application/json")
                    .body(body),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body:?}: {v}");
        assert!(v["errors"]["base"][0].is_string(), "{v}");
    }
    still_serving(&t).await;
    // Nothing was created.
    let (_, v) = t.call(Method::GET, "/users/v2", Some(&token), None).await;
    assert_eq!(v["total_entries"], json!(0));
    t.stop().await;
}

#[tokio::test]
async fn wrong_types() {
    let t = TestServer::start().await;
    let token = t.app_session().await;
    let cases = [
        json!({"user": "alice"}),
        json!({"user": {"login": {"nested": 1}, "password": "password1"}}),
        json!({"user": {"login": "ok", "password": "password1", "external_user_id": "abc"}}),
        json!({"user": {"login": "ok", "password": "password1", "tag_list": {"a": 1}}}),
    ];
    for body in cases {
        let (s, v) = t
            .call(
                Method::POST,
                "/users.json",
                Some(&token),
                Some(body.clone()),
            )
            .await;
        assert!(
            s == StatusCode::BAD_REQUEST || s == StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {s} {v}"
        );
        assert!(v["errors"].is_object());
    }
    for body in [
        json!({"application_id": "abc", "auth_key": "x"}),
        json!({"application_id": -1, "auth_key": "x"}),
        json!({"application_id": t.app_id}),
        json!({"application_id": t.app_id, "auth_key": t.auth_key, "user": "x"}),
        json!({"application_id": t.app_id, "auth_key": t.auth_key, "user": {"login": "x"}}),
    ] {
        let (s, v) = t
            .call(Method::POST, "/session.json", None, Some(body.clone()))
            .await;
        assert!(s.is_client_error(), "{body}: {s} {v}");
        assert!(v["errors"].is_object(), "{v}");
    }
    let (_, v) = t.call(Method::GET, "/users/v2", Some(&token), None).await;
    assert_eq!(v["total_entries"], json!(0));
    still_serving(&t).await;
    t.stop().await;
}

#[tokio::test]
async fn malformed_query_strings() {
    let t = TestServer::start().await;
    let token = t.app_session().await;
    for q in [
        "id[in=1",
        "[x]=1",
        "a=1&a[b]=2",
        "id[in][]=1&id[in][x]=2",
        "%ZZ[=1",
    ] {
        let (s, v) = t
            .call(
                Method::GET,
                &format!("/users/v2.json?{q}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
    }
    let deep = format!("a{}=1", "[b]".repeat(50));
    let (s, _) = t
        .call(
            Method::GET,
            &format!("/users/v2?{deep}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    still_serving(&t).await;
    t.stop().await;
}

#[tokio::test]
async fn oversize_bodies_are_413() {
    let t = TestServer::start_with(|c| c.max_body_bytes = 4096).await;
    let token = t.app_session().await;
    let big = "x".repeat(10_000);
    let (s, v) = t
        .call(
            Method::POST,
            "/users.json",
            Some(&token),
            Some(json!({"user": {"login": "big", "password": "password1", "custom_data": big}})),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(v["errors"]["base"][0].is_string());
    let (_, v) = t.call(Method::GET, "/users/v2", Some(&token), None).await;
    assert_eq!(v["total_entries"], json!(0));
    still_serving(&t).await;
    t.stop().await;
}

#[tokio::test]
async fn missing_unknown_and_garbage_tokens() {
    let t = TestServer::start().await;
    for token in [
        None,
        Some("deadbeef"),
        Some("0000000000000000000000000000000000000000"),
        Some(&*"z".repeat(5000)),
    ] {
        let (s, v) = t.call(Method::GET, "/users/v2.json", token, None).await;
        assert_eq!(
            (s, v),
            (StatusCode::UNAUTHORIZED, no_session()),
            "{token:?}"
        );
    }
    still_serving(&t).await;
    t.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let t = TestServer::start().await;
    let (s, v) = t.call(Method::GET, "/no/such/thing.json", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["errors"].is_object());
    let (s, v) = t.call(Method::PATCH, "/session.json", None, None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert!(v["errors"].is_object());
    t.stop().await;
}

#[tokio::test]
async fn delete_accepts_form_bodies() {
    let t = TestServer::start().await;
    let me = t.signup("nina").await;
    let token = t.login("nina").await;
    // The SDK sends DELETE parameters form-encoded in the body.
    let (s, v) = t
        .raw(
            t.client
                .delete(t.url(&format!("/users/{me}.json")))
                .header("CB-Token", &token)
                .header(
                    "Content-Type",
                    "application/x-www-form-urlencoded; charset=UTF-8",
                )
                .body("force=1"),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = t
        .raw(
            t.client
                .delete(t.url("/session.json"))
                .header("CB-Token", &token)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body("a[=1"),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    t.stop().await;
}
