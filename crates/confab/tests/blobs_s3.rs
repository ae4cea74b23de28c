//! Blobs kept in S3, against real S3-compatible servers: create → multipart POST of the presigned
//! fields straight to the bucket → complete → download through a redirect; the policy's
//! bindings and signature; private downloads; delete, the sweep and user deletion remove objects.
//!
//! Two servers: moto (from `e2e/.venv`; create it with `e2e/s3/setup.sh`, which
//! `scripts/test.sh` runs) for the whole flow, and s3s-fs, served in-process, for what S3 itself
//! enforces: moto stores POSTed objects without checking their policy or signature, s3s checks
//! both (the size range, the exact key and content type, every field covered by the policy).
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use confab_testkit as common;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode, Url};
use serde_json::{json, Value};
use sha2::Sha256;

use common::TestServer;

mod chatserver_common;

const BUCKET: &str = "confab-blobs";
const REGION: &str = "eu-west-1";
const ACCESS_KEY: &str = "AKIDCONFABTEST";
const SECRET_KEY: &str = "confab/test+secret";
const MAX_BYTES: u64 = 1024;

/// A moto server on a free port, stopped when dropped.
struct Moto {
    endpoint: String,
    _child: tokio::process::Child,
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("CONFAB_TEST_PYTHON") {
        return p.into();
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../e2e/.venv/bin/python")
}

impl Moto {
    async fn start() -> Self {
        credentials();
        let python = python();
        assert!(
            python.exists(),
            "{} is missing: run e2e/s3/setup.sh (scripts/test.sh does) to install the S3 test server",
            python.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new(&python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start moto");
        let endpoint = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client.get(&endpoint).send().await.is_ok() {
                let s = client
                    .put(format!("{endpoint}/{BUCKET}"))
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert!(s.is_success(), "create bucket: {s}");
                return Self {
                    endpoint,
                    _child: child,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("moto did not start on {endpoint}");
    }

    async fn has(&self, key: &str) -> bool {
        object_exists(&self.endpoint, key).await
    }
}

/// Whether the bucket at `endpoint` holds `key`, asked with the bucket owner's credentials.
async fn object_exists(endpoint: &str, key: &str) -> bool {
    {
        let region = s3::Region::Custom {
            region: REGION.into(),
            endpoint: endpoint.to_string(),
        };
        let creds =
            s3::creds::Credentials::new(Some(ACCESS_KEY), Some(SECRET_KEY), None, None, None)
                .unwrap();
        let bucket = s3::Bucket::new(BUCKET, region, creds)
            .unwrap()
            .with_path_style();
        let (_, status) = bucket.head_object(key).await.unwrap();
        assert!(status == 200 || status == 404, "{status}");
        status == 200
    }
}

/// The credentials the server reads from its environment, set once before any test here does
/// anything else (the others wait on the `Once`).
fn credentials() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    });
}

/// An S3 implementation that checks POST policies and signatures (s3s over a directory), on a
/// free port of this process; stopped when dropped.
struct PolicyCheckingS3 {
    endpoint: String,
    task: tokio::task::JoinHandle<()>,
    _root: tempfile::TempDir,
}

impl PolicyCheckingS3 {
    async fn start() -> Self {
        credentials();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        let fs = s3s_fs::FileSystem::new(root.path()).unwrap();
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let http =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let conn = http
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(conn);
            }
        });
        Self {
            endpoint,
            task,
            _root: root,
        }
    }
}

impl Drop for PolicyCheckingS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn server(moto: &Moto, tweak: impl FnOnce(&mut confab::Config)) -> TestServer {
    server_on(&moto.endpoint, tweak).await
}

async fn server_on(endpoint: &str, tweak: impl FnOnce(&mut confab::Config)) -> TestServer {
    let endpoint = endpoint.to_string();
    TestServer::start_with(|c| {
        c.blob_s3_endpoint = Some(endpoint);
        c.blob_s3_bucket = Some(BUCKET.into());
        c.blob_s3_region = Some(REGION.into());
        c.blob_max_bytes = MAX_BYTES;
        tweak(c);
    })
    .await
}

async fn create(ts: &TestServer, token: &str, content_type: &str, public: bool) -> Value {
    let (s, v) = ts
        .call(
            Method::POST,
            "/blobs.json",
            Some(token),
            Some(json!({"blob": {"name": "a b.txt", "content_type": content_type, "public": public}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["blob"].clone()
}

/// The upload URL's fields, decoded as the SDK does (`decodeURIComponent`: `+` stays `+`).
fn fields(blob: &Value) -> (Url, Vec<(String, String)>) {
    let params = blob["blob_object_access"]["params"].as_str().unwrap();
    let (base, query) = params.split_once('?').unwrap();
    let fields = query
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .unwrap()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect();
    (Url::parse(base).unwrap(), fields)
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} field in {fields:?}"))
}

/// Posts as the SDK does: every field in URL order, then `file`.
async fn post(url: &Url, fields: &[(String, String)], bytes: Vec<u8>) -> StatusCode {
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in fields {
        form = form.text(k.clone(), v.clone());
    }
    form = form.part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name("a b.txt"),
    );
    reqwest::Client::new()
        .post(url.clone())
        .multipart(form)
        .send()
        .await
        .unwrap()
        .status()
}

async fn complete(ts: &TestServer, token: &str, id: i64) -> (StatusCode, Value) {
    ts.call(
        Method::PUT,
        &format!("/blobs/{id}/complete.json"),
        Some(token),
        Some(json!({"size": 1})),
    )
    .await
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Checks the policy's SigV4 signature with the secret key, as S3 does before it accepts a
/// POST, and returns the decoded policy.
fn signed_policy(fields: &[(String, String)]) -> Value {
    let policy = field(fields, "policy");
    let credential = field(fields, "x-amz-credential");
    let parts: Vec<&str> = credential.split('/').collect();
    assert_eq!(parts.len(), 5, "{credential}");
    assert_eq!(parts[0], ACCESS_KEY);
    assert_eq!(&parts[2..], [REGION, "s3", "aws4_request"]);
    let key = [parts[1], REGION, "s3", "aws4_request"]
        .iter()
        .fold(format!("AWS4{SECRET_KEY}").into_bytes(), |k, part| {
            hmac(&k, part)
        });
    assert_eq!(
        hex::encode(hmac(&key, policy)),
        field(fields, "x-amz-signature"),
        "the signature must match the policy under the secret key"
    );
    assert_eq!(field(fields, "x-amz-algorithm"), "AWS4-HMAC-SHA256");
    let json = base64::engine::general_purpose::STANDARD
        .decode(policy)
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

/// Every field but the signature and the policy itself is a condition of the policy, with the
/// same value; the key, type, size range and expiry are the ones this blob needs.
fn check_policy(policy: &Value, fields: &[(String, String)], uid: &str, content_type: &str) {
    let conditions = policy["conditions"].as_array().unwrap();
    let exact = |name: &str| {
        conditions
            .iter()
            .find_map(|c| c.as_object().and_then(|o| o.get(name)))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    assert_eq!(exact("bucket").as_deref(), Some(BUCKET));
    assert_eq!(exact("key").as_deref(), Some(uid));
    assert_eq!(exact("Content-Type").as_deref(), Some(content_type));
    assert!(
        conditions.contains(&json!(["content-length-range", 0, MAX_BYTES])),
        "{policy}"
    );
    assert!(
        !conditions
            .iter()
            .any(|c| c.to_string().contains("starts-with")),
        "no open-ended condition: {policy}"
    );
    assert!(exact("acl").is_none(), "a private object: {policy}");
    for (k, v) in fields {
        if ["policy", "x-amz-signature"].contains(&k.to_ascii_lowercase().as_str()) {
            continue;
        }
        assert_eq!(
            exact(k).as_deref(),
            Some(v.as_str()),
            "field {k} in {policy}"
        );
    }
    let expiration = policy["expiration"].as_str().unwrap();
    let expires =
        time::OffsetDateTime::parse(expiration, &time::format_description::well_known::Rfc3339)
            .unwrap();
    let ahead = expires - time::OffsetDateTime::now_utc();
    assert!(
        ahead > time::Duration::hours(23) && ahead <= time::Duration::hours(24),
        "expires with the blob's upload, within a day: {expiration}"
    );
}

#[tokio::test]
async fn s3_uploads_downloads_and_deletes() {
    let moto = Moto::start().await;
    let ts = server(&moto, |_| {}).await;
    let (_, alice) = ts.user("alice").await;

    // Create: the upload URL is the bucket's, with the presigned fields percent-encoded.
    let blob = create(&ts, &alice, "text/plain; charset=utf-8", false).await;
    let uid = blob["uid"].as_str().unwrap().to_string();
    let id = blob["id"].as_i64().unwrap();
    let params = blob["blob_object_access"]["params"].as_str().unwrap();
    assert!(
        params.starts_with(&format!("{}/{BUCKET}?", moto.endpoint)),
        "{params}"
    );
    assert!(!params.contains('+') && params.contains("%20"), "{params}");
    let (url, form) = fields(&blob);
    assert_eq!(field(&form, "key"), uid);
    assert_eq!(field(&form, "Content-Type"), "text/plain; charset=utf-8");
    let mut names: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "Content-Type",
            "bucket",
            "key",
            "policy",
            "x-amz-algorithm",
            "x-amz-credential",
            "x-amz-date",
            "x-amz-signature"
        ],
        "the SigV4 POST fields, no acl"
    );
    let policy = signed_policy(&form);
    check_policy(&policy, &form, &uid, "text/plain; charset=utf-8");

    // Complete before any upload: nothing in the bucket, so nothing to complete.
    let (s, v) = complete(&ts, &alice, id).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    // Upload exactly the limit straight to the bucket, then complete: the size is the object's.
    let bytes: Vec<u8> = (0..MAX_BYTES).map(|i| (i * 7 % 251) as u8).collect();
    let s = post(&url, &form, bytes.clone()).await;
    assert!(s.is_success(), "{s}");
    assert!(moto.has(&uid).await);
    let (s, v) = complete(&ts, &alice, id).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = ts
        .call(
            Method::GET,
            &format!("/blobs/{id}.json"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(v["blob"]["size"], MAX_BYTES, "{v}");
    assert_eq!(v["blob"]["blob_status"], "complete", "{v}");

    // A private blob needs a session of the app, then redirects to a presigned GET.
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let s = no_follow
        .get(ts.url(&format!("/blobs/{uid}")))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let resp = no_follow
        .get(ts.url(&format!("/blobs/{uid}?token={alice}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("{}/{BUCKET}/{uid}?", moto.endpoint))
            && location.contains("X-Amz-Signature=")
            && location.contains("X-Amz-Expires=600"),
        "{location}"
    );
    for path in [
        format!("/blobs/{uid}?token={alice}"),
        format!("/blobs/{uid}/download?token={alice}"),
    ] {
        let resp = ts.client.get(ts.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_eq!(
            resp.headers()["content-type"],
            "text/plain; charset=utf-8",
            "{path}"
        );
        assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes, "{path}");
    }
    let resp = ts
        .client
        .get(ts.url(&format!("/blobs/{uid}/download")))
        .header("CB-Token", &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes);
    // Another app's session sees no such blob.
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
    let other_app_token = v["session"]["token"].as_str().unwrap().to_string();
    let s = no_follow
        .get(ts.url(&format!("/blobs/{uid}?token={other_app_token}")))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A public blob downloads without a session.
    let public = create(&ts, &alice, "image/png", true).await;
    let (purl, pform) = fields(&public);
    check_policy(
        &signed_policy(&pform),
        &pform,
        public["uid"].as_str().unwrap(),
        "image/png",
    );
    assert!(post(&purl, &pform, b"png".to_vec()).await.is_success());
    let (s, v) = complete(&ts, &alice, public["id"].as_i64().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let resp = ts
        .client
        .get(ts.url(&format!("/blobs/{}", public["uid"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"png");

    // Only the owner deletes; deleting removes the object, and the old presigned GET 404s.
    let (_, bob) = ts.user("bob").await;
    let (s, _) = ts
        .call(
            Method::DELETE,
            &format!("/blobs/{id}.json"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(moto.has(&uid).await);
    let (s, v) = ts
        .call(
            Method::DELETE,
            &format!("/blobs/{id}.json"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!moto.has(&uid).await);
    let s = reqwest::get(&location).await.unwrap().status();
    assert_eq!(s, StatusCode::NOT_FOUND);
    let s = no_follow
        .get(ts.url(&format!("/blobs/{uid}?token={alice}")))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, StatusCode::NOT_FOUND);

    // This server's own upload route takes nothing while blobs live in S3.
    let form = reqwest::multipart::Form::new()
        .text("blob_id", public["id"].to_string())
        .text("upload_token", "00".repeat(20))
        .part("file", reqwest::multipart::Part::bytes(b"x".to_vec()));
    let (s, _) = ts
        .raw(ts.client.post(ts.url("/blobs/upload")).multipart(form))
        .await;
    assert!(s.is_client_error(), "{s}");
    ts.stop().await;
}

/// Each blob's policy names its own key: the fields of one blob do not carry another's key, and
/// posting one blob's fields never completes another blob.
#[tokio::test]
async fn s3_policies_are_bound_to_their_blob() {
    let moto = Moto::start().await;
    let ts = server(&moto, |_| {}).await;
    let (_, alice) = ts.user("alice").await;
    let (_, bob) = ts.user("bob").await;
    let a = create(&ts, &alice, "text/plain", false).await;
    let b = create(&ts, &bob, "text/plain", false).await;
    let (_, a_form) = fields(&a);
    let (b_url, b_form) = fields(&b);
    let a_policy = signed_policy(&a_form);
    let b_policy = signed_policy(&b_form);
    assert_ne!(a_policy, b_policy);
    check_policy(&b_policy, &b_form, b["uid"].as_str().unwrap(), "text/plain");
    // A tampered key no longer matches the signed policy's exact key, so S3 refuses the POST;
    // and even stored under another key, it would not be the blob that completes.
    assert!(
        !b_policy.to_string().contains(a["uid"].as_str().unwrap()),
        "the signed policy never names another blob's key"
    );
    // Bob's own upload completes only Bob's blob.
    assert!(post(&b_url, &b_form, b"bob".to_vec()).await.is_success());
    let (s, _) = complete(&ts, &alice, a["id"].as_i64().unwrap()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = complete(&ts, &alice, b["id"].as_i64().unwrap()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "only the owner completes");
    let (s, v) = complete(&ts, &bob, b["id"].as_i64().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    ts.stop().await;
}

/// What the policy forbids, S3 refuses, and nothing is stored: a file one byte over the limit,
/// a key swapped for another blob's, another content type, a form without the signed fields.
#[tokio::test]
async fn s3_refuses_what_the_policy_does_not_allow() {
    let s3 = PolicyCheckingS3::start().await;
    let ts = server_on(&s3.endpoint, |_| {}).await;
    let (_, alice) = ts.user("alice").await;
    let (_, bob) = ts.user("bob").await;
    let limit = vec![b'x'; MAX_BYTES as usize];

    // One byte over the limit: refused, nothing stored, nothing to complete.
    let big = create(&ts, &alice, "text/plain", false).await;
    let (url, form) = fields(&big);
    let big_uid = big["uid"].as_str().unwrap();
    let mut over = limit.clone();
    over.push(b'x');
    let s = post(&url, &form, over).await;
    assert!(s.is_client_error(), "{s}");
    assert!(!object_exists(&s3.endpoint, big_uid).await);
    let (s, _) = complete(&ts, &alice, big["id"].as_i64().unwrap()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // Another blob's key (Bob's) in Alice's fields: refused, Bob's blob stays empty.
    let theirs = create(&ts, &bob, "text/plain", false).await;
    let their_uid = theirs["uid"].as_str().unwrap().to_string();
    let swapped: Vec<_> = form
        .iter()
        .map(|(k, v)| {
            let v = if k == "key" {
                their_uid.clone()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    let s = post(&url, &swapped, b"mine now".to_vec()).await;
    assert!(s.is_client_error(), "{s}");
    assert!(!object_exists(&s3.endpoint, &their_uid).await);

    // Another content type: refused.
    let retyped: Vec<_> = form
        .iter()
        .map(|(k, v)| {
            let v = if k == "Content-Type" {
                "text/html".into()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    let s = post(&url, &retyped, b"<script>".to_vec()).await;
    assert!(s.is_client_error(), "{s}");
    // Without the signed fields: refused.
    let bare = vec![("key".to_string(), big_uid.to_string())];
    let s = post(&url, &bare, b"anonymous".to_vec()).await;
    assert!(s.is_client_error(), "{s}");
    assert!(!object_exists(&s3.endpoint, big_uid).await);

    // Exactly the limit with the fields as issued: stored, completed, downloaded.
    let s = post(&url, &form, limit.clone()).await;
    assert!(s.is_success(), "{s}");
    let (s, v) = complete(&ts, &alice, big["id"].as_i64().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let resp = ts
        .client
        .get(ts.url(&format!("/blobs/{big_uid}?token={alice}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().to_vec(), limit);
    ts.stop().await;
}

/// Blobs never completed are swept with their objects; deleting a user deletes theirs.
#[tokio::test]
async fn s3_sweep_and_user_deletion_remove_objects() {
    let moto = Moto::start().await;
    let mut ts = server(&moto, |c| c.blob_incomplete_ttl_secs = 2).await;
    let (alice_id, alice) = ts.user("alice").await;
    let kept = create(&ts, &alice, "text/plain", false).await;
    let (url, form) = fields(&kept);
    assert!(post(&url, &form, b"kept".to_vec()).await.is_success());
    let (s, v) = complete(&ts, &alice, kept["id"].as_i64().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let dropped = create(&ts, &alice, "text/plain", false).await;
    let (url, form) = fields(&dropped);
    assert!(post(&url, &form, b"never completed".to_vec())
        .await
        .is_success());
    let kept_uid = kept["uid"].as_str().unwrap();
    let dropped_uid = dropped["uid"].as_str().unwrap();
    assert!(moto.has(dropped_uid).await);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // The sweep runs at start (and every minute).
    ts.restart().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!moto.has(dropped_uid).await, "the sweep removes the object");
    assert!(moto.has(kept_uid).await);
    let alice = ts.login("alice").await;
    let (s, v) = ts
        .call(
            Method::DELETE,
            &format!("/users/{alice_id}.json"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!moto.has(kept_uid).await, "the user's objects go with them");
    ts.stop().await;
}

/// Half an S3 configuration is refused at start rather than storing blobs on disk.
#[tokio::test]
async fn half_an_s3_configuration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config(dir.path());
    config.blob_s3_bucket = Some(BUCKET.into());
    let err = confab::create_app(&config, "x").await.err().unwrap();
    let source = err.source.map(|s| s.to_string()).unwrap_or_default();
    assert!(source.contains("blob_s3_endpoint"), "{source}");
}

/// The ChatServer face's uploads come through the server (its clients post the bytes to
/// `/uploads`): with S3 blobs they go on to the bucket once received, and the file's URL
/// redirects to a presigned GET of the object. Over the blob limit nothing is stored.
#[tokio::test]
async fn chatserver_uploads_go_to_the_bucket() {
    let moto = Moto::start().await;
    let endpoint = moto.endpoint.clone();
    let cs = chatserver_common::Cs::start_with(|c| {
        c.blob_s3_endpoint = Some(endpoint);
        c.blob_s3_bucket = Some(BUCKET.into());
        c.blob_s3_region = Some(REGION.into());
        c.blob_max_bytes = MAX_BYTES;
    })
    .await;
    let a = cs.register("s3upload1").await;
    let bytes = b"\x89PNG not really a picture".to_vec();
    let (s, v) = cs
        .upload(
            Some(&a.token),
            Some("pic1"),
            Some("image/png"),
            bytes.clone().into(),
        )
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!("pic1.png")));

    // The URL answers with a redirect to the object; following it gives the bytes.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_redirects
        .get(format!("{}/pic1.png", cs.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&moto.endpoint), "{location}");
    let (s, got) = cs.fetch_file("/files/pic1.png").await;
    assert_eq!((s, got), (StatusCode::OK, bytes));

    // Over the blob limit: refused, and neither a file nor an object stays.
    let big = vec![b'x'; MAX_BYTES as usize + 1];
    let (s, _) = cs
        .upload(Some(&a.token), Some("big1"), Some("image/png"), big.into())
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, _) = cs.fetch_file("/big1.png").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
