//! The chat REST API over real HTTP: dialogs, messages, unread counts, reactions, search,
//! the admin API, and bad input.

use confab_testkit as common;

use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

struct Trio {
    a: (i64, String),
    b: (i64, String),
    c: (i64, String),
}

async fn trio(t: &TestServer) -> Trio {
    let mut v = Vec::new();
    for n in ["amy", "bert", "cleo"] {
        let id = t.signup(n).await;
        v.push((id, t.login(n).await));
    }
    let mut it = v.into_iter();
    Trio {
        a: it.next().unwrap(),
        b: it.next().unwrap(),
        c: it.next().unwrap(),
    }
}

async fn create(t: &TestServer, tok: &str, body: Value) -> Value {
    let (s, v) = t
        .call(Method::POST, "/chat/Dialog.json", Some(tok), Some(body))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn post(t: &TestServer, tok: &str, body: Value) -> Value {
    let (s, v) = t
        .call(Method::POST, "/chat/Message.json", Some(tok), Some(body))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

fn ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn dialogs_create_list_and_private_dedup() {
    let t = TestServer::start().await;
    let p = trio(&t).await;
    let g = create(
        &t,
        &p.a.1,
        json!({"type": 2, "name": "Group", "occupants_ids": format!("{}, {}", p.b.0, p.c.0),
        "data": {"class_name": "Meta", "color": "red"}}),
    )
    .await;
    assert_eq!(g["occupants_ids"], json!([p.a.0, p.b.0, p.c.0]));
    assert_eq!(g["user_id"], json!(p.a.0));
    let gid = g["_id"].as_str().unwrap();
    assert_eq!(gid.len(), 24);
    assert_eq!(
        g["xmpp_room_jid"],
        json!(format!("{}_{}@muc.localhost", t.app_id, gid))
    );
    assert_eq!(g["data"]["color"], json!("red"));

    let p1 = create(&t, &p.a.1, json!({"type": 3, "occupants_ids": [p.b.0]})).await;
    assert_eq!(p1["xmpp_room_jid"], Value::Null);
    // The same pair again, from either side, is the same dialog.
    let p2 = create(
        &t,
        &p.b.1,
        json!({"type": 3, "occupants_ids": p.a.0.to_string()}),
    )
    .await;
    assert_eq!(p1["_id"], p2["_id"]);

    let pubd = create(&t, &p.a.1, json!({"type": 4, "name": "Town square"})).await;
    assert_eq!(pubd["occupants_count"], json!(1));
    // Users cannot create broadcasts.
    let (s, _) = t
        .call(
            Method::POST,
            "/chat/Dialog.json",
            Some(&p.a.1),
            Some(json!({"type": 1, "name": "B"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // C sees the group only; A sees all three.
    let (_, v) = t
        .call(Method::GET, "/chat/Dialog.json", Some(&p.c.1), None)
        .await;
    assert_eq!(v["total_entries"], json!(1));
    let (_, v) = t
        .call(
            Method::GET,
            "/chat/Dialog.json?sort_asc=created_at",
            Some(&p.a.1),
            None,
        )
        .await;
    assert_eq!(
        ids(&v),
        vec![
            gid.to_string(),
            p1["_id"].as_str().unwrap().into(),
            pubd["_id"].as_str().unwrap().into()
        ]
    );

    // Operators.
    let q = |query: &str| {
        let path = format!("/chat/Dialog.json?{query}");
        let tok = p.a.1.clone();
        let t = &t;
        async move { t.call(Method::GET, &path, Some(&tok), None).await }
    };
    assert_eq!(q("type[in]=2,3").await.1["total_entries"], json!(2));
    assert_eq!(q("type[nin]=2,3").await.1["total_entries"], json!(1));
    assert_eq!(q("type=4").await.1["total_entries"], json!(1));
    assert_eq!(q("type[ne]=4").await.1["total_entries"], json!(2));
    assert_eq!(q("type[gt]=2").await.1["total_entries"], json!(2));
    assert_eq!(q("type[gte]=2").await.1["total_entries"], json!(3));
    assert_eq!(q("type[lt]=3").await.1["total_entries"], json!(1));
    assert_eq!(q("type[lte]=3").await.1["total_entries"], json!(2));
    assert_eq!(q("type[all]=2").await.1["total_entries"], json!(1));
    assert_eq!(q("name[ctn]=squ").await.1["total_entries"], json!(1));
    assert_eq!(q(&format!("_id={gid}")).await.1["total_entries"], json!(1));
    // Ids compare as ids: a private dialog's may be derived from its pair, not from when it was made.
    let above = [&p1["_id"], &pubd["_id"]]
        .iter()
        .filter(|id| id.as_str().unwrap() > gid)
        .count();
    assert_eq!(
        q(&format!("_id[gt]={gid}")).await.1["total_entries"],
        json!(above)
    );
    assert_eq!(q("data%5Bcolor%5D=red").await.1["total_entries"], json!(1));
    assert_eq!(q("data%5Bcolor%5D=blue").await.1["total_entries"], json!(0));
    assert_eq!(q("created_at[gt]=1000").await.1["total_entries"], json!(3));
    assert_eq!(q("updated_at[lt]=1000").await.1["total_entries"], json!(0));
    assert_eq!(q("count=1").await.1, json!({"items": {"count": 3}}));
    let (_, v) = q("limit=1&skip=1&sort_asc=created_at").await;
    assert_eq!(ids(&v), vec![p1["_id"].as_str().unwrap().to_string()]);
    assert_eq!(v["total_entries"], json!(3));
    t.stop().await;
}

#[tokio::test]
async fn messages_unread_counts_and_marking() {
    let t = TestServer::start().await;
    let p = trio(&t).await;
    let g = create(
        &t,
        &p.a.1,
        json!({"type": 2, "name": "G", "occupants_ids": [p.b.0, p.c.0]}),
    )
    .await;
    let gid = g["_id"].as_str().unwrap().to_string();
    let m1 = post(
        &t,
        &p.a.1,
        json!({"chat_dialog_id": gid, "message": "one", "date_sent": 1000,
        "attachments": [{"type": "image", "uid": "u1"}], "country": "USA"}),
    )
    .await;
    assert_eq!(m1["country"], json!("USA"));
    assert_eq!(m1["attachments"][0]["uid"], json!("u1"));
    assert_eq!(m1["sender_id"], json!(p.a.0));
    let m2 = post(
        &t,
        &p.a.1,
        json!({"chat_dialog_id": gid, "message": "two", "date_sent": 2000,
        "attachments": {"0": {"type": "video", "id": "7"}}}),
    )
    .await;
    let m3 = post(
        &t,
        &p.b.1,
        json!({"chat_dialog_id": gid, "message": "three", "date_sent": 3000}),
    )
    .await;

    // Dialog bookkeeping.
    let (_, v) = t
        .call(
            Method::GET,
            &format!("/chat/Dialog.json?_id={gid}"),
            Some(&p.c.1),
            None,
        )
        .await;
    let d = &v["items"][0];
    assert_eq!(d["last_message"], json!("three"));
    assert_eq!(d["last_message_id"], m3["_id"]);
    assert_eq!(d["last_message_user_id"], json!(p.b.0));
    assert_eq!(d["last_message_date_sent"], json!(3000));
    assert_eq!(d["unread_messages_count"], json!(3));
    let (_, v) = t
        .call(
            Method::GET,
            &format!("/chat/Message/unread.json?chat_dialog_ids={gid}"),
            Some(&p.b.1),
            None,
        )
        .await;
    assert_eq!(v, json!({"total": 2, gid.clone(): 2}));

    // Filters on messages, without marking read.
    let base = format!("/chat/Message.json?chat_dialog_id={gid}&mark_as_read=0");
    let page = |extra: &str| format!("{base}&{extra}");
    let (_, v) = t
        .call(
            Method::GET,
            &page("sort_desc=date_sent"),
            Some(&p.c.1),
            None,
        )
        .await;
    assert_eq!(
        ids(&v),
        vec![
            m3["_id"].as_str().unwrap().to_string(),
            m2["_id"].as_str().unwrap().into(),
            m1["_id"].as_str().unwrap().into()
        ]
    );
    for (q, n) in [
        ("date_sent[lt]=2500", 2),
        ("date_sent[gte]=2000", 2),
        (&format!("sender_id={}", p.b.0) as &str, 1),
        ("message[ctn]=tw", 1),
        ("attachments.type=image", 1),
        ("attachments.type[in]=image,video", 2),
        ("attachments.type[nin]=image", 2),
        (&format!("sender_id[ne]={}", p.a.0), 1),
        ("recipient_id=0", 3),
        ("updated_at[gt]=1000", 3),
        ("limit=1&skip=2", 1),
    ] {
        let (s, v) = t.call(Method::GET, &page(q), Some(&p.c.1), None).await;
        assert_eq!(s, StatusCode::OK, "{q}: {v}");
        assert_eq!(v["items"].as_array().unwrap().len(), n, "{q}");
    }
    let (_, v) = t
        .call(Method::GET, &page("count=1"), Some(&p.c.1), None)
        .await;
    assert_eq!(v, json!({"items": {"count": 3}}));
    let (_, v) = t
        .call(Method::GET, "/chat/Message/unread.json", Some(&p.c.1), None)
        .await;
    assert_eq!(v["total"], json!(3), "mark_as_read=0 must not mark");

    // Marking one message read, then the whole dialog.
    let (s, _) = t
        .call(
            Method::PUT,
            &format!("/chat/Message/{}.json", m1["_id"].as_str().unwrap()),
            Some(&p.c.1),
            Some(json!({"chat_dialog_id": gid, "read": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = t
        .call(Method::GET, "/chat/Message/unread.json", Some(&p.c.1), None)
        .await;
    assert_eq!(v["total"], json!(2));
    let (s, _) = t
        .call(
            Method::PUT,
            &format!("/chat/Message/{}.json", m2["_id"].as_str().unwrap()),
            Some(&p.c.1),
            Some(json!({"chat_dialog_id": gid, "delivered": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = t
        .call(
            Method::GET,
            &page(&format!("_id={}", m2["_id"].as_str().unwrap())),
            Some(&p.c.1),
            None,
        )
        .await;
    assert!(v["items"][0]["delivered_ids"]
        .as_array()
        .unwrap()
        .contains(&json!(p.c.0)));
    assert!(!v["items"][0]["read_ids"]
        .as_array()
        .unwrap()
        .contains(&json!(p.c.0)));
    let (s, _) = t
        .call(
            Method::PUT,
            "/chat/Message.json",
            Some(&p.c.1),
            Some(json!({"chat_dialog_id": gid, "read": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = t
        .call(Method::GET, "/chat/Message/unread.json", Some(&p.c.1), None)
        .await;
    assert_eq!(v["total"], json!(0));

    // Listing marks read by default.
    let (_, v) = t
        .call(Method::GET, "/chat/Message/unread.json", Some(&p.b.1), None)
        .await;
    assert_eq!(v["total"], json!(2));
    let (_, v) = t
        .call(
            Method::GET,
            &format!("/chat/Message.json?chat_dialog_id={gid}"),
            Some(&p.b.1),
            None,
        )
        .await;
    assert!(v["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["read_ids"].as_array().unwrap().contains(&json!(p.b.0))));
    let (_, v) = t
        .call(Method::GET, "/chat/Message/unread.json", Some(&p.b.1), None)
        .await;
    assert_eq!(v["total"], json!(0));

    // Editing: own messages only.
    let (s, _) = t
        .call(
            Method::PUT,
            &format!("/chat/Message/{}.json", m3["_id"].as_str().unwrap()),
            Some(&p.a.1),
            Some(json!({"message": "hacked"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = t
        .call(
            Method::PUT,
            &format!("/chat/Message/{}.json", m3["_id"].as_str().unwrap()),
            Some(&p.b.1),
            Some(json!({"message": "three!"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = t
        .call(
            Method::GET,
            &page(&format!("_id={}", m3["_id"].as_str().unwrap())),
            Some(&p.b.1),
            None,
        )
        .await;
    assert_eq!(v["items"][0]["message"], json!("three!"));
    assert!(v["items"][0]["edited_at"].is_number());
    t.stop().await;
}

#[tokio::test]
async fn deleting_messages_and_dialogs() {
    let t = TestServer::start().await;
    let p = trio(&t).await;
    let g = create(
        &t,
        &p.a.1,
        json!({"type": 2, "name": "G", "occupants_ids": [p.b.0, p.c.0]}),
    )
    .await;
    let gid = g["_id"].as_str().unwrap().to_string();
    let m1 = post(&t, &p.b.1, json!({"chat_dialog_id": gid, "message": "one"})).await;
    let m2 = post(&t, &p.b.1, json!({"chat_dialog_id": gid, "message": "two"})).await;
    let (m1id, m2id) = (m1["_id"].as_str().unwrap(), m2["_id"].as_str().unwrap());

    // C deletes m1 for themselves: gone for C, there for A; C's unread count drops.
    let (s, _) = t
        .form(
            Method::DELETE,
            &format!("/chat/Message/{m1id}.json"),
            &p.c.1,
            "",
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let list = |tok: String| {
        let t = &t;
        let gid = gid.clone();
        async move {
            t.call(
                Method::GET,
                &format!("/chat/Message.json?chat_dialog_id={gid}&mark_as_read=0"),
                Some(&tok),
                None,
            )
            .await
            .1
        }
    };
    assert_eq!(
        list(p.c.1.clone()).await["items"].as_array().unwrap().len(),
        1
    );
    assert_eq!(
        list(p.a.1.clone()).await["items"].as_array().unwrap().len(),
        2
    );
    let (_, v) = t
        .call(Method::GET, "/chat/Message/unread.json", Some(&p.c.1), None)
        .await;
    assert_eq!(v["total"], json!(1));

    // B deletes both own messages for everyone (one request, two ids).
    let (s, _) = t
        .form(
            Method::DELETE,
            &format!("/chat/Message/{m1id},{m2id}.json"),
            &p.b.1,
            "force=1",
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        list(p.a.1.clone()).await["items"].as_array().unwrap().len(),
        0
    );
    let (_, v) = t
        .call(Method::GET, "/chat/Message/unread.json", Some(&p.a.1), None)
        .await;
    assert_eq!(v["total"], json!(0));
    let (_, v) = t
        .call(
            Method::GET,
            &format!("/chat/Dialog.json?_id={gid}"),
            Some(&p.a.1),
            None,
        )
        .await;
    assert_eq!(v["items"][0]["last_message"], Value::Null);

    // clearHistory hides what was there for the caller only.
    post(&t, &p.a.1, json!({"chat_dialog_id": gid, "message": "old"})).await;
    let (s, _) = t
        .form(
            Method::DELETE,
            &format!("/chat/Dialog/clearHistory/{gid}.json"),
            &p.c.1,
            "",
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        list(p.c.1.clone()).await["items"].as_array().unwrap().len(),
        0
    );
    assert_eq!(
        list(p.b.1.clone()).await["items"].as_array().unwrap().len(),
        1
    );
    post(&t, &p.a.1, json!({"chat_dialog_id": gid, "message": "new"})).await;
    assert_eq!(
        list(p.c.1.clone()).await["items"].as_array().unwrap().len(),
        1
    );

    // Several dialogs at once: the seed's result object.
    let other = create(
        &t,
        &p.b.1,
        json!({"type": 2, "name": "B's", "occupants_ids": [p.a.0]}),
    )
    .await;
    let oid = other["_id"].as_str().unwrap();
    let missing = "5c091060e588ce59fdf873dc";
    let (s, v) = t
        .form(
            Method::DELETE,
            &format!("/chat/Dialog/{gid},{oid},{missing}.json"),
            &p.a.1,
            "force=1",
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v,
        json!({"SuccessfullyDeleted": {"ids": [gid]}, "NotFound": {"ids": [missing]}, "WrongPermissions": {"ids": [oid]}})
    );
    let (_, v) = t
        .call(Method::GET, "/chat/Dialog.json", Some(&p.c.1), None)
        .await;
    assert_eq!(v["total_entries"], json!(0));
    // Deleting for oneself (no force) leaves a group.
    let (s, _) = t
        .form(
            Method::DELETE,
            &format!("/chat/Dialog/{oid}.json"),
            &p.a.1,
            "",
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = t
        .call(
            Method::GET,
            &format!("/chat/Dialog.json?_id={oid}"),
            Some(&p.b.1),
            None,
        )
        .await;
    assert_eq!(v["items"][0]["occupants_ids"], json!([p.b.0]));
    t.stop().await;
}

#[tokio::test]
async fn private_dialogs_by_recipient_public_subscriptions_and_settings() {
    let t = TestServer::start().await;
    let p = trio(&t).await;
    // A message to a recipient creates the private dialog.
    let m = post(
        &t,
        &p.a.1,
        json!({"recipient_id": p.b.0, "message": "hi b"}),
    )
    .await;
    assert_eq!(m["recipient_id"], json!(p.b.0));
    let (_, v) = t
        .call(Method::GET, "/chat/Dialog.json?type=3", Some(&p.b.1), None)
        .await;
    assert_eq!(v["items"][0]["_id"], m["chat_dialog_id"]);
    assert_eq!(v["items"][0]["unread_messages_count"], json!(1));
    // Private dialogs cannot be renamed; outsiders cannot read or post.
    let did = m["chat_dialog_id"].as_str().unwrap();
    let (s, _) = t
        .call(
            Method::PUT,
            &format!("/chat/Dialog/{did}.json"),
            Some(&p.a.1),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = t
        .call(
            Method::GET,
            &format!("/chat/Message.json?chat_dialog_id={did}"),
            Some(&p.c.1),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t
        .call(
            Method::POST,
            "/chat/Message.json",
            Some(&p.c.1),
            Some(json!({"chat_dialog_id": did, "message": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Public dialog: subscribe, occupants, unsubscribe.
    let pubd = create(&t, &p.a.1, json!({"type": 4, "name": "Open"})).await;
    let pid = pubd["_id"].as_str().unwrap();
    let (s, _) = t
        .call(
            Method::POST,
            "/chat/Message.json",
            Some(&p.c.1),
            Some(json!({"chat_dialog_id": pid, "message": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "non-subscribers cannot post");
    let (s, v) = t
        .call(
            Method::POST,
            &format!("/chat/Dialog/{pid}/subscribe.json"),
            Some(&p.c.1),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["occupants_count"], json!(2));
    assert_eq!(v["occupants_ids"], json!([]));
    let (_, v) = t
        .call(
            Method::GET,
            &format!("/chat/Dialog/{pid}/occupants.json?limit=10&skip=0"),
            Some(&p.b.1),
            None,
        )
        .await;
    let users: Vec<i64> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(users, vec![p.a.0, p.c.0]);
    post(
        &t,
        &p.c.1,
        json!({"chat_dialog_id": pid, "message": "hello all"}),
    )
    .await;
    let (s, _) = t
        .form(
            Method::DELETE,
            &format!("/chat/Dialog/{pid}/subscribe.json"),
            &p.c.1,
            "",
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = t
        .call(
            Method::GET,
            &format!("/chat/Dialog.json?_id={pid}"),
            Some(&p.a.1),
            None,
        )
        .await;
    assert_eq!(v["items"][0]["occupants_count"], json!(1));

    // Notification settings are per user.
    let (_, v) = t
        .call(
            Method::GET,
            &format!("/chat/Dialog/{did}/notifications.json"),
            Some(&p.b.1),
            None,
        )
        .await;
    assert_eq!(v, json!({"notifications": {"enabled": 1}}));
    let (s, v) = t
        .call(
            Method::PUT,
            &format!("/chat/Dialog/{did}/notifications.json"),
            Some(&p.b.1),
            Some(json!({"enabled": "0"})),
        )
        .await;
    assert_eq!(
        (s, v),
        (StatusCode::OK, json!({"notifications": {"enabled": 0}}))
    );
    let (_, v) = t
        .call(
            Method::GET,
            &format!("/chat/Dialog/{did}/notifications.json"),
            Some(&p.b.1),
            None,
        )
        .await;
    assert_eq!(v["notifications"]["enabled"], json!(0));
    let (_, v) = t
        .call(
            Method::GET,
            &format!("/chat/Dialog/{did}/notifications.json"),
            Some(&p.a.1),
            None,
        )
        .await;
    assert_eq!(v["notifications"]["enabled"], json!(1));
    t.stop().await;
}

#[tokio::test]
async fn reactions_and_pins() {
    let t = TestServer::start().await;
    let p = trio(&t).await;
    let g = create(
        &t,
        &p.a.1,
        json!({"type": 2, "name": "G", "occupants_ids": [p.b.0, p.c.0]}),
    )
    .await;
    let gid = g["_id"].as_str().unwrap();
    let m = post(
        &t,
        &p.b.1,
        json!({"chat_dialog_id": gid, "message": "react to me"}),
    )
    .await;
    let mid = m["_id"].as_str().unwrap();
    for (tok, body) in [
        (&p.a.1, json!({"add": "🔥"})),
        (&p.c.1, json!({"add": "🔥"})),
        (&p.c.1, json!({"add": "👍"})),
        (&p.c.1, json!({"remove": "👍"})),
    ] {
        let (s, v) = t
            .call(
                Method::PUT,
                &format!("/chat/Message/{mid}/reactions.json"),
                Some(tok),
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (_, v) = t
        .call(
            Method::GET,
            &format!("/chat/Message/{mid}/reactions.json"),
            Some(&p.b.1),
            None,
        )
        .await;
    assert_eq!(v, json!({"🔥": [p.a.0, p.c.0]}));
    let (_, v) = t
        .call(
            Method::GET,
            &format!("/chat/Message.json?chat_dialog_id={gid}"),
            Some(&p.a.1),
            None,
        )
        .await;
    assert_eq!(
        v["items"][0]["reactions"],
        json!({"own": ["🔥"], "total": {"🔥": 2}})
    );
    let (s, _) = t
        .call(
            Method::PUT,
            &format!("/chat/Message/{mid}/reactions.json"),
            Some(&p.a.1),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // The owner pins and unpins; unknown message ids are refused.
    let path = format!("/chat/Dialog/{gid}.json");
    let (s, v) = t
        .call(
            Method::PUT,
            &path,
            Some(&p.a.1),
            Some(json!({"push_all": {"pinned_messages_ids": [mid]}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["pinned_messages_ids"], json!([mid]));
    let (s, _) = t
        .call(
            Method::PUT,
            &path,
            Some(&p.a.1),
            Some(json!({"push_all": {"pinned_messages_ids": ["5c091060e588ce59fdf873dc"]}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, v) = t
        .call(
            Method::PUT,
            &path,
            Some(&p.a.1),
            Some(json!({"pull_all": {"pinned_messages_ids": [mid]}})),
        )
        .await;
    assert_eq!(v["pinned_messages_ids"], json!([]));
    t.stop().await;
}

#[tokio::test]
async fn search_uses_the_index_and_visibility() {
    let t = TestServer::start().await;
    let p = trio(&t).await;
    let ab = create(
        &t,
        &p.a.1,
        json!({"type": 2, "name": "Project lorem", "occupants_ids": [p.b.0]}),
    )
    .await;
    let abid = ab["_id"].as_str().unwrap();
    let cc = create(
        &t,
        &p.c.1,
        json!({"type": 2, "name": "Secret", "occupants_ids": [p.b.0]}),
    )
    .await;
    post(
        &t,
        &p.a.1,
        json!({"chat_dialog_id": abid, "message": "lorem ipsum dolor", "date_sent": 1_700_000_000}),
    )
    .await;
    post(&t, &p.a.1, json!({"chat_dialog_id": abid, "message": "completely different words", "date_sent": 1_700_000_100})).await;
    post(&t, &p.c.1, json!({"chat_dialog_id": cc["_id"], "message": "lorem from a secret place", "date_sent": 1_700_000_200})).await;

    let search = |tok: &str, q: &str| {
        let path = format!("/chat/search.json?{q}");
        let tok = tok.to_string();
        let t = &t;
        async move { t.call(Method::GET, &path, Some(&tok), None).await }
    };
    // "Or" over words: A sees their own two matches only; C's dialog is not A's.
    let (s, v) = search(&p.a.1, "search_text=lorem%20different").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["results"]["messages"].as_array().unwrap().len(), 2);
    assert_eq!(v["results"]["dialogs"][0]["_id"], json!(abid));
    assert!(v["results"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["user"]["id"] == json!(p.a.0)));
    // B is in both dialogs.
    let (_, v) = search(&p.b.1, "search_text=lorem%20stuff").await;
    assert_eq!(v["results"]["messages"].as_array().unwrap().len(), 2);
    // A quoted phrase is exact.
    let (_, v) = search(&p.b.1, "search_text=%22ipsum%20dolor%22").await;
    assert_eq!(v["results"]["messages"].as_array().unwrap().len(), 1);
    let (_, v) = search(&p.b.1, "search_text=%22dolor%20ipsum%22").await;
    assert_eq!(v["results"]["messages"].as_array().unwrap().len(), 0);
    // Restricted to dialogs and dates.
    let (_, v) = search(
        &p.b.1,
        &format!("search_text=lorem%20ipsum&chat_dialog_ids={abid}"),
    )
    .await;
    assert_eq!(v["results"]["messages"].as_array().unwrap().len(), 1);
    let (_, v) = search(
        &p.b.1,
        "search_text=lorem%20ipsum&start_date=2023-11-14T22:17:00Z&end_date=2023-11-14T22:16:00Z",
    )
    .await;
    assert_eq!(
        v["results"]["messages"].as_array().unwrap().len(),
        1,
        "only the 22:16:40 message"
    );
    // Bad searches.
    for bad in [
        "search_text=lore",
        "search_text=",
        "search_text=lorem%20ipsum&start_date=2023-01-01T00:00:00Z",
        "search_text=lorem%20ipsum&start_date=2023-11-14T00:00:00Z&end_date=2023-01-01T00:00:00Z",
        "search_text=lorem%20ipsum&limit=101",
    ] {
        let (s, v) = search(&p.b.1, bad).await;
        assert!(s.is_client_error(), "{bad}: {s} {v}");
    }
    let eleven = (0..11)
        .map(|i| format!("5c091060e588ce59fdf873{i:02x}"))
        .collect::<Vec<_>>()
        .join(",");
    let (s, _) = search(
        &p.b.1,
        &format!("search_text=lorem%20ipsum&chat_dialog_ids={eleven}"),
    )
    .await;
    assert!(s.is_client_error());
    t.stop().await;
}

#[tokio::test]
async fn broadcasts_reach_everyone_and_admin_api() {
    let t = TestServer::start().await;
    let p = trio(&t).await;
    let (s, b) = t
        .admin(
            Method::POST,
            "/admin/chat.json",
            Some(json!({"type": 1, "name": "News", "user_id": p.a.0})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let bid = b["_id"].as_str().unwrap().to_string();
    assert_eq!(b["type"], json!(1));
    post(
        &t,
        &p.a.1,
        json!({"chat_dialog_id": bid, "message": "announcement"}),
    )
    .await;
    // Every user of the app sees it, with an unread count.
    let (_, v) = t
        .call(Method::GET, "/chat/Dialog.json", Some(&p.c.1), None)
        .await;
    assert_eq!(ids(&v), vec![bid.clone()]);
    assert_eq!(v["items"][0]["unread_messages_count"], json!(1));
    let (_, v) = t
        .call(Method::GET, "/chat/Message/unread.json", Some(&p.c.1), None)
        .await;
    assert_eq!(v["total"], json!(1));
    let (_, v) = t
        .call(
            Method::GET,
            &format!("/chat/Message.json?chat_dialog_id={bid}"),
            Some(&p.c.1),
            None,
        )
        .await;
    assert_eq!(v["items"][0]["message"], json!("announcement"));
    let (_, v) = t
        .call(Method::GET, "/chat/Message/unread.json", Some(&p.c.1), None)
        .await;
    assert_eq!(v["total"], json!(0));
    // Regular users cannot post.
    let (s, _) = t
        .call(
            Method::POST,
            "/chat/Message.json",
            Some(&p.b.1),
            Some(json!({"chat_dialog_id": bid, "message": "me too"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Admin lists: newest first; `_id[lt]` paging walks everything.
    for i in 0..5 {
        create(
            &t,
            &p.b.1,
            json!({"type": 2, "name": format!("g{i}"), "occupants_ids": [p.c.0]}),
        )
        .await;
    }
    let mut seen = Vec::new();
    let (_, first) = t
        .admin(Method::GET, "/admin/chat/list.json?limit=2", None)
        .await;
    assert_eq!(first["total_entries"], json!(6));
    seen.extend(ids(&first));
    loop {
        let last = seen.last().unwrap().clone();
        let (_, v) = t
            .admin(
                Method::GET,
                &format!("/admin/chat/list.json?limit=2&_id[lt]={last}"),
                None,
            )
            .await;
        let page = ids(&v);
        if page.is_empty() {
            break;
        }
        seen.extend(page);
    }
    assert_eq!(seen.len(), 6);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "newest first");

    // Mute for one user via the admin API.
    let (s, v) = t
        .admin(
            Method::PUT,
            &format!("/admin/chat/{bid}.json"),
            Some(json!({"user_id": p.b.0, "is_muted": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["silent_ids"], json!([p.b.0]));
    assert_eq!(v["is_muted"], json!(true));

    // Messages list with deleted_for_ids.
    let (_, v) = t
        .admin(
            Method::GET,
            &format!("/admin/chat/messages/list.json?chat_dialog_id={bid}"),
            None,
        )
        .await;
    assert_eq!(v["total_entries"], json!(1));
    assert_eq!(v["items"][0]["deleted_for_ids"], json!([]));

    // Wrong keys, and another app's key, see nothing.
    let (s, _) = t
        .raw(
            t.client
                .get(t.url("/admin/chat/list.json"))
                .header("CB-Administration-API-Key", "nope"),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = t.raw(t.client.get(t.url("/admin/chat/list.json"))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let other = confab::create_app(&t.config, "other").await.unwrap();
    let (_, v) = t
        .raw(
            t.client
                .get(t.url("/admin/chat/list.json"))
                .header("CB-Administration-API-Key", &other.api_key),
        )
        .await;
    assert_eq!(v["total_entries"], json!(0));
    let (s, _) = t
        .raw(
            t.client
                .put(t.url(&format!("/admin/chat/{bid}.json")))
                .header("CB-Administration-API-Key", &other.api_key)
                .json(&json!({"name": "stolen"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    t.stop().await;
}

#[tokio::test]
async fn bad_chat_input_changes_nothing() {
    let t = TestServer::start().await;
    let p = trio(&t).await;
    let g = create(
        &t,
        &p.a.1,
        json!({"type": 2, "name": "G", "occupants_ids": [p.b.0]}),
    )
    .await;
    let gid = g["_id"].as_str().unwrap().to_string();
    let bad_gets = [
        "/chat/Dialog.json?type[foo]=2".to_string(),
        "/chat/Dialog.json?type[in]=x".into(),
        "/chat/Dialog.json?_id=nothex".into(),
        "/chat/Dialog.json?limit=101".into(),
        "/chat/Dialog.json?sort_desc=password".into(),
        "/chat/Dialog.json?data%5Bx%27%29%3B%5D=1".into(),
        "/chat/Message.json".into(),
        "/chat/Message.json?chat_dialog_id=123".into(),
        format!("/chat/Message.json?chat_dialog_id={gid}&date_sent[lt]=yesterday"),
        format!("/chat/Message.json?chat_dialog_id={gid}&sender_id[in]=1,x"),
        "/chat/Message/unread.json?chat_dialog_ids=zzz".into(),
    ];
    for path in &bad_gets {
        let (s, v) = t.call(Method::GET, path, Some(&p.a.1), None).await;
        assert!(
            s == StatusCode::BAD_REQUEST || s == StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {s} {v}"
        );
        assert!(v["errors"].is_object());
    }
    let unknown = "5c091060e588ce59fdf873dc";
    let (s, _) = t
        .call(
            Method::PUT,
            &format!("/chat/Dialog/{unknown}.json"),
            Some(&p.a.1),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t
        .call(
            Method::GET,
            &format!("/chat/Message.json?chat_dialog_id={unknown}"),
            Some(&p.a.1),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t
        .form(
            Method::DELETE,
            &format!("/chat/Message/{unknown}.json"),
            &p.a.1,
            "force=1",
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let bad_posts = [
        json!({"type": 9, "name": "x", "occupants_ids": [p.b.0]}),
        json!({"type": 2, "occupants_ids": [p.b.0]}),
        json!({"type": 2, "name": "x", "occupants_ids": "1, x"}),
        json!({"type": 2, "name": "x", "occupants_ids": [999_999]}),
        json!({"type": 3, "occupants_ids": []}),
        json!({"type": 2, "name": {"a": 1}, "occupants_ids": [p.b.0]}),
        json!({"type": 2, "name": "x".repeat(500), "occupants_ids": [p.b.0]}),
    ];
    for body in bad_posts {
        let (s, v) = t
            .call(
                Method::POST,
                "/chat/Dialog.json",
                Some(&p.a.1),
                Some(body.clone()),
            )
            .await;
        assert!(s.is_client_error(), "{body}: {s} {v}");
    }
    for body in [
        json!({"message": "no dialog"}),
        json!({"chat_dialog_id": gid, "attachments": "x"}),
        json!({"chat_dialog_id": gid, "message": ["a"]}),
        json!({"chat_dialog_id": "nothex", "message": "x"}),
    ] {
        let (s, v) = t
            .call(
                Method::POST,
                "/chat/Message.json",
                Some(&p.a.1),
                Some(body.clone()),
            )
            .await;
        assert!(s.is_client_error(), "{body}: {s} {v}");
    }
    // A foreign app's user cannot reach this dialog even with a valid session.
    let other = confab::create_app(&t.config, "other").await.unwrap();
    let (_, v) = t
        .call(
            Method::POST,
            "/session.json",
            None,
            Some(json!({"application_id": other.app.id.get(), "auth_key": other.app.auth_key})),
        )
        .await;
    let foreign = v["session"]["token"].as_str().unwrap().to_string();
    let (_, v) = t
        .raw(
            t.client
                .post(t.url("/users.json"))
                .header("CB-Token", &foreign)
                .json(&json!({"user": {"login": "stranger", "password": "password1"}})),
        )
        .await;
    assert!(v["user"]["id"].is_number());
    let (_, v) = t
        .call(
            Method::POST,
            "/session.json",
            None,
            Some(
                json!({"application_id": other.app.id.get(), "auth_key": other.app.auth_key,
        "user": {"login": "stranger", "password": "password1"}}),
            ),
        )
        .await;
    let stranger = v["session"]["token"].as_str().unwrap().to_string();
    let (s, _) = t
        .call(
            Method::GET,
            &format!("/chat/Message.json?chat_dialog_id={gid}"),
            Some(&stranger),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Nothing above changed the dialogs: A still has exactly the one group, with no messages.
    let (_, v) = t
        .call(Method::GET, "/chat/Dialog.json", Some(&p.a.1), None)
        .await;
    assert_eq!(v["total_entries"], json!(1));
    assert_eq!(v["items"][0]["last_message"], Value::Null);
    // App sessions cannot use the chat API.
    let app_tok = t.app_session().await;
    let (s, _) = t
        .call(Method::GET, "/chat/Dialog.json", Some(&app_tok), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    t.stop().await;
}

#[tokio::test]
async fn admins_at_creation_extensions_and_last_message_status() {
    let t = TestServer::start().await;
    let p = trio(&t).await;
    // The SDK joins admin ids with ", " like occupants.
    let g = create(
        &t,
        &p.a.1,
        json!({"type": 2, "name": "G", "occupants_ids": [p.b.0, p.c.0],
        "admins_ids": p.b.0.to_string(), "extensions": {"location": "Sun bar"}}),
    )
    .await;
    assert_eq!(g["admins_ids"], json!([p.b.0]));
    assert_eq!(g["extensions"], json!({"location": "Sun bar"}));
    let gid = g["_id"].as_str().unwrap();
    let (s, v) = t
        .call(
            Method::PUT,
            &format!("/chat/Dialog/{gid}.json"),
            Some(&p.a.1),
            Some(json!({"extensions": {"mood": "calm"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["extensions"],
        json!({"location": "Sun bar", "mood": "calm"})
    );
    // Admins of a group must be occupants; at most five.
    let (s, _) = t
        .call(
            Method::POST,
            "/chat/Dialog.json",
            Some(&p.a.1),
            Some(json!({"type": 2, "name": "x", "occupants_ids": [p.b.0], "admins_ids": [p.c.0]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // sent → delivered → read, as the sender sees it; nobody else gets a status.
    let m = post(
        &t,
        &p.a.1,
        json!({"chat_dialog_id": gid, "message": "status?"}),
    )
    .await;
    let mid = m["_id"].as_str().unwrap();
    let status = |tok: String| {
        let t = &t;
        let path = format!("/chat/Dialog.json?_id={gid}");
        async move {
            t.call(Method::GET, &path, Some(&tok), None).await.1["items"][0]["last_message_status"]
                .clone()
        }
    };
    assert_eq!(status(p.a.1.clone()).await, json!("sent"));
    assert_eq!(status(p.b.1.clone()).await, Value::Null);
    t.call(
        Method::PUT,
        &format!("/chat/Message/{mid}.json"),
        Some(&p.b.1),
        Some(json!({"delivered": 1})),
    )
    .await;
    assert_eq!(status(p.a.1.clone()).await, json!("delivered"));
    t.call(
        Method::PUT,
        &format!("/chat/Message/{mid}.json"),
        Some(&p.c.1),
        Some(json!({"read": 1})),
    )
    .await;
    assert_eq!(status(p.a.1.clone()).await, json!("read"));
    t.stop().await;
}
