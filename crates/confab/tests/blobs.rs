//! Blobs over real sockets: create → multipart upload to the returned URL → complete → info, list,
//! download, rename, delete; who may see, change and download what; the size limit while
//! streaming; and the sweep of blobs never completed.
use confab_testkit as common;

use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn create(ts: &TestServer, token: &str, name: &str, public: bool) -> Value {
    let (s, v) = ts
        .call(
            Method::POST,
            "/blobs.json",
            Some(token),
            Some(json!({"blob": {"name": name, "content_type": "text/plain", "public": public}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["blob"].clone()
}

/// Uploads as the SDK does: POST to the URL without its query, query fields first, then `file`.
async fn upload(ts: &TestServer, blob: &Value, bytes: Vec<u8>) -> (StatusCode, Value) {
    let params = blob["blob_object_access"]["params"].as_str().unwrap();
    let url = reqwest::Url::parse(params).unwrap();
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in url.query_pairs() {
        form = form.text(k.into_owned(), v.into_owned());
    }
    form = form.part("file", reqwest::multipart::Part::bytes(bytes));
    let mut target = url.clone();
    target.set_query(None);
    ts.raw(ts.client.post(target).multipart(form)).await
}

async fn complete(ts: &TestServer, token: &str, id: i64, size: usize) -> (StatusCode, Value) {
    ts.call(
        Method::PUT,
        &format!("/blobs/{id}/complete.json"),
        Some(token),
        Some(json!({"size": size})),
    )
    .await
}

/// Creates, uploads and completes a blob; returns `(id, uid)`.
async fn stored(ts: &TestServer, token: &str, bytes: &[u8], public: bool) -> (i64, String) {
    let blob = create(ts, token, "note.txt", public).await;
    let (s, v) = upload(ts, &blob, bytes.to_vec()).await;
    assert!(s.is_success(), "{s} {v}");
    let id = blob["id"].as_i64().unwrap();
    let (s, v) = complete(ts, token, id, bytes.len()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    (id, blob["uid"].as_str().unwrap().to_string())
}

async fn download(ts: &TestServer, path: &str) -> (StatusCode, Option<String>, Vec<u8>) {
    let resp = ts.client.get(ts.url(path)).send().await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    (status, ct, resp.bytes().await.unwrap().to_vec())
}

fn blob_files(ts: &TestServer) -> Vec<String> {
    std::fs::read_dir(ts.config.data_dir.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "tmp")
        .collect()
}

fn temp_files(ts: &TestServer) -> usize {
    std::fs::read_dir(ts.config.data_dir.join("blobs/tmp"))
        .unwrap()
        .count()
}

#[tokio::test]
async fn full_flow_private_blob() {
    let ts = TestServer::start().await;
    let (_, alice) = ts.user("alice").await;
    let blob = create(&ts, &alice, "note.txt", false).await;
    let id = blob["id"].as_i64().unwrap();
    let uid = blob["uid"].as_str().unwrap().to_string();
    assert!(uid.parse::<i64>().is_err());
    let params = blob["blob_object_access"]["params"].as_str().unwrap();
    assert!(
        params.starts_with(&format!("{}/blobs/upload?", ts.base)),
        "{params}"
    );
    assert_eq!(blob["size"], Value::Null);

    let bytes = b"hello, blob\n\x00\xff".to_vec();
    let (s, v) = upload(&ts, &blob, bytes.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Not downloadable before it is completed.
    let (s, _, _) = download(&ts, &format!("/blobs/{uid}?token={alice}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = complete(&ts, &alice, id, bytes.len()).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Info by id and by uid.
    for key in [id.to_string(), uid.clone()] {
        let (s, v) = ts
            .call(
                Method::GET,
                &format!("/blobs/{key}.json"),
                Some(&alice),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["blob"]["id"], id);
        assert_eq!(v["blob"]["uid"], uid.as_str());
        assert_eq!(v["blob"]["size"], bytes.len());
        assert_eq!(v["blob"]["public"], false);
    }
    let (s, v) = ts
        .call(
            Method::GET,
            &format!("/blobs/{uid}/object.json"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["blob"]["uid"], uid.as_str());

    // Download through `privateUrl` and through the header.
    let (s, ct, got) = download(&ts, &format!("/blobs/{uid}?token={alice}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ct.as_deref(), Some("text/plain"));
    assert_eq!(got, bytes);
    let resp = ts
        .client
        .get(ts.url(&format!("/blobs/{uid}/download")))
        .header("CB-Token", &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes);
    // Private: no token or a bad one is refused.
    let (s, _, _) = download(&ts, &format!("/blobs/{uid}")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = download(&ts, &format!("/blobs/{uid}?token=deadbeef")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Rename: by GET (the SDK's `storage.update`) and by PUT.
    let (s, v) = ts
        .call(
            Method::GET,
            &format!("/blobs/{id}.json?blob%5Bname%5D=renamed.txt"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["blob"]["name"], "renamed.txt");
    let (s, v) = ts
        .call(
            Method::PUT,
            &format!("/blobs/{id}.json"),
            Some(&alice),
            Some(json!({"blob": {"name": "again.txt"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["blob"]["name"], "again.txt");

    // List, paged.
    stored(&ts, &alice, b"two", true).await;
    let (s, v) = ts
        .call(
            Method::GET,
            "/blobs.json?current_page=1&per_page=1",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total_entries"], 2);
    assert_eq!(v["per_page"], 1);
    assert_eq!(v["current_page"], 1);
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let (_, v2) = ts
        .call(
            Method::GET,
            "/blobs.json?current_page=2&per_page=1",
            Some(&alice),
            None,
        )
        .await;
    assert_ne!(v["items"][0]["blob"]["id"], v2["items"][0]["blob"]["id"]);

    // Delete removes the row and the file.
    assert!(blob_files(&ts).contains(&uid));
    let (s, v) = ts
        .call(
            Method::DELETE,
            &format!("/blobs/{id}.json"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!blob_files(&ts).contains(&uid));
    let (s, v) = ts
        .call(
            Method::GET,
            &format!("/blobs/{id}.json"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert!(v["errors"].is_object() || v["errors"].is_array(), "{v}");
    let (s, _, _) = download(&ts, &format!("/blobs/{uid}?token={alice}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    ts.stop().await;
}

#[tokio::test]
async fn public_blobs_need_no_token_and_other_users_only_read() {
    let ts = TestServer::start().await;
    let (_, alice) = ts.user("alice").await;
    let (_, bob) = ts.user("bob").await;
    let (pub_id, pub_uid) = stored(&ts, &alice, b"public bytes", true).await;
    let (priv_id, priv_uid) = stored(&ts, &alice, b"private bytes", false).await;

    let (s, _, got) = download(&ts, &format!("/blobs/{pub_uid}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got, b"public bytes");
    // An expired or unknown token does not hide a public blob.
    let (s, _, _) = download(&ts, &format!("/blobs/{pub_uid}?token=nope")).await;
    assert_eq!(s, StatusCode::OK);

    // Bob (same app) reads and downloads Alice's private blob with his own token...
    let (s, _, got) = download(&ts, &format!("/blobs/{priv_uid}?token={bob}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got, b"private bytes");
    let (s, _) = ts
        .call(
            Method::GET,
            &format!("/blobs/{priv_id}.json"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // ...but cannot rename, complete or delete it, and does not list it.
    for (method, path, body) in [
        (
            Method::PUT,
            format!("/blobs/{priv_id}.json"),
            Some(json!({"blob": {"name": "x"}})),
        ),
        (
            Method::GET,
            format!("/blobs/{priv_id}.json?blob%5Bname%5D=x"),
            None,
        ),
        (
            Method::PUT,
            format!("/blobs/{priv_id}/complete.json"),
            Some(json!({"size": 1})),
        ),
        (Method::DELETE, format!("/blobs/{pub_id}.json"), None),
    ] {
        let (s, v) = ts.call(method, &path, Some(&bob), body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {v}");
        assert!(v["errors"].is_object(), "{v}");
    }
    let (_, v) = ts.call(Method::GET, "/blobs.json", Some(&bob), None).await;
    assert_eq!(v["total_entries"], 0);
    let (_, v) = ts
        .call(
            Method::GET,
            &format!("/blobs/{priv_id}.json"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(v["blob"]["name"], "note.txt");

    // Unknown ids and uids.
    let (s, v) = ts
        .call(Method::GET, "/blobs/999999.json", Some(&alice), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, _) = ts
        .call(Method::GET, "/blobs/abcdef0123.json", Some(&alice), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = download(&ts, "/blobs/abcdef0123").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // No session: 401.
    let (s, _) = ts.call(Method::GET, "/blobs.json", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    ts.stop().await;
}

#[tokio::test]
async fn another_apps_blobs_are_invisible() {
    let ts = TestServer::start().await;
    let (_, alice) = ts.user("alice").await;
    let (priv_id, priv_uid) = stored(&ts, &alice, b"secret", false).await;
    let (app2, key2) = ts.second_app().await;
    let (s, v) = ts
        .call(
            Method::POST,
            "/session.json",
            None,
            Some(json!({"application_id": app2, "auth_key": key2})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let app_token = v["session"]["token"].as_str().unwrap().to_string();
    let (s, v) = ts
        .call(
            Method::POST,
            "/users.json",
            Some(&app_token),
            Some(json!({"user": {"login": "mallory", "password": "password1"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = ts
        .call(
            Method::POST,
            "/session.json",
            None,
            Some(json!({"application_id": app2, "auth_key": key2,
                        "user": {"login": "mallory", "password": "password1"}})),
        )
        .await;
    let mallory = v["session"]["token"].as_str().unwrap().to_string();

    for key in [priv_id.to_string(), priv_uid.clone()] {
        let (s, _) = ts
            .call(
                Method::GET,
                &format!("/blobs/{key}.json"),
                Some(&mallory),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
    let (s, _) = ts
        .call(
            Method::DELETE,
            &format!("/blobs/{priv_id}.json"),
            Some(&mallory),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = download(&ts, &format!("/blobs/{priv_uid}?token={mallory}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    ts.stop().await;
}

#[tokio::test]
async fn bad_input_stores_nothing() {
    let ts = TestServer::start().await;
    let (_, alice) = ts.user("alice").await;
    for blob in [
        json!({"content_type": "text/plain"}),
        json!({"name": "a.txt"}),
        json!({"name": "a.txt", "content_type": "not a type"}),
        json!({"name": "x".repeat(101), "content_type": "text/plain"}),
    ] {
        let (s, v) = ts
            .call(
                Method::POST,
                "/blobs.json",
                Some(&alice),
                Some(json!({"blob": blob})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{blob}: {v}");
        assert!(v["errors"].is_object(), "{v}");
    }
    let (_, v) = ts
        .call(
            Method::POST,
            "/blobs.json",
            Some(&alice),
            Some(json!({"blob": {"name": "x".repeat(100), "content_type": "text/plain"}})),
        )
        .await;
    let id = v["blob"]["id"]
        .as_i64()
        .expect("100 characters are allowed");
    // Completing before the upload is refused.
    let (s, _) = complete(&ts, &alice, id, 3).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, v) = ts
        .call(Method::GET, "/blobs.json", Some(&alice), None)
        .await;
    assert_eq!(v["total_entries"], 1);
    ts.stop().await;
}

#[tokio::test]
async fn upload_grants_are_bound_and_one_time() {
    let ts = TestServer::start().await;
    let (_, alice) = ts.user("alice").await;
    let (_, bob) = ts.user("bob").await;
    let a = create(&ts, &alice, "a.txt", false).await;
    let b = create(&ts, &bob, "b.txt", false).await;
    let url = |blob: &Value| {
        reqwest::Url::parse(blob["blob_object_access"]["params"].as_str().unwrap()).unwrap()
    };
    let field = |blob: &Value, name: &str| {
        url(blob)
            .query_pairs()
            .find(|(k, _)| k == name)
            .unwrap()
            .1
            .into_owned()
    };
    let target = format!("{}/blobs/upload", ts.base);
    let post = |fields: Vec<(&'static str, String)>| {
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in fields {
            form = form.text(k, v);
        }
        form = form.part("file", reqwest::multipart::Part::bytes(b"evil".to_vec()));
        ts.client.post(&target).multipart(form)
    };
    // No grant, a grant swapped in from another blob, a made-up one.
    for fields in [
        vec![],
        vec![
            ("blob_id", field(&a, "blob_id")),
            ("upload_token", field(&b, "upload_token")),
        ],
        vec![
            ("blob_id", field(&a, "blob_id")),
            ("upload_token", "00".repeat(20)),
        ],
    ] {
        let (s, v) = ts.raw(post(fields)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert!(v["errors"].is_object(), "{v}");
    }
    // Not multipart at all.
    let (s, v) = ts.raw(ts.client.post(&target).body("x")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(blob_files(&ts).is_empty());
    assert_eq!(temp_files(&ts), 0);

    let (s, _) = upload(&ts, &a, b"first".to_vec()).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = upload(&ts, &a, b"second".to_vec()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a grant is good for one upload");
    complete(&ts, &alice, a["id"].as_i64().unwrap(), 5).await;
    let uid = a["uid"].as_str().unwrap();
    let (_, _, got) = download(&ts, &format!("/blobs/{uid}?token={alice}")).await;
    assert_eq!(got, b"first");
    ts.stop().await;
}

#[tokio::test]
async fn size_limit_is_enforced_while_streaming() {
    const LIMIT: u64 = 64 * 1024;
    let ts = TestServer::start_with(|c| c.blob_max_bytes = LIMIT).await;
    let (_, alice) = ts.user("alice").await;
    let exact = create(&ts, &alice, "exact.bin", false).await;
    let (s, v) = upload(&ts, &exact, vec![7u8; LIMIT as usize]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["blob"]["size"], LIMIT);

    let over = create(&ts, &alice, "over.bin", false).await;
    let (s, v) = upload(&ts, &over, vec![7u8; LIMIT as usize + 1]).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(v["errors"].is_object(), "{v}");
    let uid = over["uid"].as_str().unwrap();
    assert!(!blob_files(&ts).iter().any(|f| f == uid));
    assert_eq!(temp_files(&ts), 0);
    let (_, v) = ts
        .call(
            Method::GET,
            &format!("/blobs/{}.json", over["id"]),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(v["blob"]["size"], Value::Null);
    // The refused upload did not spend the grant: the right file still goes up.
    let (s, _) = upload(&ts, &over, b"small".to_vec()).await;
    assert_eq!(s, StatusCode::CREATED);
    ts.stop().await;
}

#[tokio::test]
async fn blobs_never_completed_are_swept_and_users_take_theirs() {
    let mut ts = TestServer::start_with(|c| c.blob_incomplete_ttl_secs = 2).await;
    let (alice_id, alice) = ts.user("alice").await;
    let kept = stored(&ts, &alice, b"kept", false).await;
    let dropped = create(&ts, &alice, "never.txt", false).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (s, _) = upload(&ts, &dropped, b"late".to_vec()).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "the grant expires with the blob's lifetime"
    );
    // The sweep runs at start (and every minute).
    ts.restart().await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let alice = ts.login("alice").await;
    let (_, v) = ts
        .call(Method::GET, "/blobs.json", Some(&alice), None)
        .await;
    assert_eq!(v["total_entries"], 1, "{v}");
    assert_eq!(v["items"][0]["blob"]["id"], kept.0);
    assert_eq!(blob_files(&ts), vec![kept.1.clone()]);

    // Deleting the user deletes their blobs and files.
    let (s, v) = ts
        .call(
            Method::DELETE,
            &format!("/users/{alice_id}.json"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(blob_files(&ts).is_empty());
    ts.stop().await;
}

/// A browser app on another origin uploads with `CB-Token`/`CB-SDK` headers: the preflight passes
/// and the answers carry CORS headers.
#[tokio::test]
async fn browser_uploads_pass_cors() {
    let ts = TestServer::start().await;
    let resp = ts
        .client
        .request(Method::OPTIONS, ts.url("/blobs/upload"))
        .header("Origin", "https://app.example.com")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "cb-token,cb-sdk")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    let allowed = resp.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("cb-token") && allowed.contains("cb-sdk"),
        "{allowed}"
    );

    let (_, alice) = ts.user("alice").await;
    let (_, uid) = stored(&ts, &alice, b"x", true).await;
    let resp = ts
        .client
        .get(ts.url(&format!("/blobs/{uid}")))
        .header("Origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    ts.stop().await;
}

#[tokio::test]
async fn only_the_serving_process_clears_unfinished_uploads() {
    let mut ts = TestServer::start().await;
    // A partial upload, as a serving process streams it.
    let partial = ts.config.data_dir.join("blobs/tmp/upload-in-progress");
    std::fs::write(&partial, b"half of a photo").unwrap();

    // `confab app create` against the same data directory leaves it alone...
    ts.second_app().await;
    assert!(partial.exists(), "app create removed an upload in progress");
    assert_eq!(temp_files(&ts), 1);

    // ...and a server starting on it clears what the previous run left unfinished.
    ts.restart().await;
    assert!(!partial.exists());
    assert_eq!(temp_files(&ts), 0);
    ts.stop().await;
}

#[tokio::test]
async fn deleting_an_app_deletes_its_blobs_and_nothing_else() {
    let ts = TestServer::start().await;
    let (_, alice) = ts.user("alice").await;
    let kept = stored(&ts, &alice, b"first app's", false).await;
    let (app2, key2) = ts.second_app().await;
    let (_, v) = ts
        .call(
            Method::POST,
            "/session.json",
            None,
            Some(json!({"application_id": app2, "auth_key": key2})),
        )
        .await;
    let app_token = v["session"]["token"].as_str().unwrap().to_string();
    let creds = json!({"login": "mallory", "password": "password1"});
    let (s, v) = ts
        .call(
            Method::POST,
            "/users.json",
            Some(&app_token),
            Some(json!({"user": creds})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = ts
        .call(
            Method::POST,
            "/session.json",
            None,
            Some(json!({"application_id": app2, "auth_key": key2, "user": creds})),
        )
        .await;
    let mallory = v["session"]["token"].as_str().unwrap().to_string();
    let gone = stored(&ts, &mallory, b"second app's", true).await;
    assert_eq!(blob_files(&ts).len(), 2);

    let app2 = confab_core::AppId::new(app2).unwrap();
    confab::delete_app(&ts.config, app2).await.unwrap();
    // Its bytes, its sessions and its blobs are gone; the first app's are untouched.
    assert_eq!(blob_files(&ts), vec![kept.1.clone()]);
    let (s, _) = ts
        .call(Method::GET, "/blobs.json", Some(&mallory), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = download(&ts, &format!("/blobs/{}", gone.1)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, bytes) = download(&ts, &format!("/blobs/{}?token={alice}", kept.1)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(bytes, b"first app's");
    // A second delete finds nothing.
    let again = confab::delete_app(&ts.config, app2).await.unwrap_err();
    assert_eq!(again.kind, confab_core::ErrorKind::NotFound);
    ts.stop().await;
}
