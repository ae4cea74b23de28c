// The admin chat REST API (`CB-Administration-API-Key: <api_key>`), called with plain fetch (the SDK
// does not cover it), next to dialogs and messages made through the real connectycube@6.1.2 SDK.
//
//   GET  /admin/chat/list            newest first, limit ≤ 100, `_id[lt]=<last id>` walks everything
//   GET  /admin/chat/messages/list   ?chat_dialog_id=…; items carry deleted_for_ids
//   PUT  /admin/chat/<id>            {user_id, is_muted} → silent_ids; other Update Dialog fields
//   POST /admin/chat                 {type: 1, name, user_id} creates a broadcast dialog
//
// A wrong key is 401; one app's key never reaches another app's dialogs.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer } from '../lib/server.mjs';
import { loadSdk } from '../lib/util.mjs';
import {
  T,
  MISSING_ID,
  signupUsers,
  as,
  assertObjectId,
  sortedIds,
  dialogAs,
  messagesAs,
  post,
  adminFetch,
} from '../lib/chat.mjs';

const CB = await loadSdk();

/** How many group dialogs the bulk step makes: more than one full admin page. */
const BULK = 105;

let server;
let app;
let U;
/** Every dialog of app A, in creation order. */
const created = [];
let gm; // the dialog with messages
const msgs = [];

const admin = (method, path, opts) => adminFetch(server, app.api_key, method, path, opts);

/** One dialog through the admin list, by _id range (gte = lte = id). */
async function adminDialog(id, key = app.api_key) {
  const res = await adminFetch(server, key, 'GET', '/admin/chat/list', { query: { '_id[gte]': id, '_id[lte]': id } });
  assert.equal(res.status, 200, res.text);
  assert.ok(res.json.items.length <= 1, res.text);
  return res.json.items[0];
}

before(async () => {
  server = await startServer();
  app = server.app;
  U = await signupUsers(CB, server, ['U1', 'U2', 'U3']);
  as(CB, U.U1);
  for (let i = 0; i < BULK; i++) {
    const d = await CB.chat.dialog.create({ type: T.GROUP, name: `bulk ${i}`, occupants_ids: [U.U2.id] });
    created.push(d._id);
  }
  gm = await CB.chat.dialog.create({ type: T.GROUP, name: 'with messages', occupants_ids: [U.U2.id, U.U3.id] });
  created.push(gm._id);
  msgs.push(await post(CB, U.U1, gm._id, 'first', { mission: 'take over the planet' }));
  msgs.push(await post(CB, U.U2, gm._id, 'second'));
  msgs.push(await post(CB, U.U3, gm._id, 'third'));
  // A message elsewhere, which a chat_dialog_id filter must leave out.
  await post(CB, U.U1, created[0], 'elsewhere');
});

after(async () => {
  await server?.stop();
});

describe('admin API authentication', () => {
  it('no key, a wrong key, the auth_key or a user token: 401', async () => {
    const none = await adminFetch(server, null, 'GET', '/admin/chat/list');
    assert.equal(none.status, 401, none.text);
    const wrong = await adminFetch(server, 'not-the-api-key', 'GET', '/admin/chat/list');
    assert.equal(wrong.status, 401, wrong.text);
    assert.ok(wrong.json?.errors, `a JSON errors body: ${wrong.text}`);
    const authKey = await adminFetch(server, app.auth_key, 'GET', '/admin/chat/list');
    assert.equal(authKey.status, 401, authKey.text);
    const token = await fetch(`${server.url}/admin/chat/list`, { headers: { 'CB-Token': U.U1.session.token } });
    assert.equal(token.status, 401);
    const wrongPut = await adminFetch(server, 'not-the-api-key', 'PUT', `/admin/chat/${gm._id}`, { body: { name: 'x' } });
    assert.equal(wrongPut.status, 401);
    assert.equal((await dialogAs(CB, U.U1, gm._id)).name, 'with messages', 'nothing changed');
    const wrongMsgs = await adminFetch(server, 'nope', 'GET', '/admin/chat/messages/list', { query: { chat_dialog_id: gm._id } });
    assert.equal(wrongMsgs.status, 401);
  });
});

describe('GET /admin/chat/list', () => {
  it('answers {total_entries, skip, limit, items}, default limit 100, newest first', async () => {
    const res = await admin('GET', '/admin/chat/list');
    assert.equal(res.status, 200, res.text.slice(0, 300));
    const body = res.json;
    assert.equal(body.total_entries, created.length);
    assert.equal(body.skip, 0);
    assert.equal(body.limit, 100);
    assert.equal(body.items.length, 100);
    const newestFirst = [...created].reverse().slice(0, 100);
    assert.deepEqual(body.items.map((d) => d._id), newestFirst);
  });

  it('items have the Dialog fields plus silent_ids / deleted_ids', async () => {
    const d = await adminDialog(gm._id);
    assert.ok(d, 'found by _id[gte]/_id[lte]');
    assertObjectId(d._id);
    assert.equal(d.type, T.GROUP);
    assert.equal(d.name, 'with messages');
    assert.equal(d.user_id, U.U1.id);
    assert.deepEqual(sortedIds(d.occupants_ids), sortedIds([U.U1.id, U.U2.id, U.U3.id]));
    assert.equal(d.last_message, 'third');
    assert.equal(d.last_message_id, msgs[2]._id);
    assert.equal(d.last_message_user_id, U.U3.id);
    assert.equal(d.xmpp_room_jid, `${app.id}_${gm._id}@muc.localhost`);
    // "field may be missing"; when present it is an array, empty for now.
    assert.deepEqual(d.silent_ids ?? [], []);
    assert.deepEqual(d.deleted_ids ?? [], []);
  });

  it('limit is capped at 100', async () => {
    const res = await admin('GET', '/admin/chat/list', { query: { limit: 1000 } });
    if (res.status === 200) {
      assert.equal(res.json.limit, 100, res.text.slice(0, 200));
      assert.equal(res.json.items.length, 100);
    } else {
      assert.ok([400, 422].includes(res.status), `limit=1000: ${res.status} ${res.text}`);
    }
    const small = await admin('GET', '/admin/chat/list', { query: { limit: 7 } });
    assert.equal(small.json.limit, 7);
    assert.equal(small.json.items.length, 7);
    assert.equal(small.json.total_entries, created.length);
  });

  it('paging by _id[lt]=<last id> walks every dialog exactly once, newest first', async () => {
    const limit = 30;
    const first = await admin('GET', '/admin/chat/list', { query: { limit } });
    const { total_entries } = first.json;
    let all = [...first.json.items];
    const batches = Math.ceil(total_entries / limit);
    for (let i = 1; i < batches; ++i) {
      const lastId = all.at(-1)._id;
      const res = await admin('GET', '/admin/chat/list', { query: { limit, '_id[lt]': lastId } });
      assert.equal(res.status, 200, res.text);
      assert.ok(res.json.items.length > 0, `batch ${i} is empty`);
      all = all.concat(res.json.items);
    }
    assert.equal(all.length, created.length);
    assert.deepEqual(all.map((d) => d._id), [...created].reverse());
    const past = await admin('GET', '/admin/chat/list', { query: { limit, '_id[lt]': created[0] } });
    assert.deepEqual(past.json.items, []);
  });

  it('sort_asc=_id and _id[gt] go the other way', async () => {
    const res = await admin('GET', '/admin/chat/list', { query: { limit: 5, sort_asc: '_id' } });
    assert.deepEqual(res.json.items.map((d) => d._id), created.slice(0, 5));
    const gt = await admin('GET', '/admin/chat/list', { query: { limit: 3, sort_asc: '_id', '_id[gt]': created[4] } });
    assert.deepEqual(gt.json.items.map((d) => d._id), created.slice(5, 8));
  });
});

describe('POST /admin/chat (broadcast)', () => {
  let b;
  it('creates a broadcast dialog owned by user_id, which every user then lists', async () => {
    const res = await admin('POST', '/admin/chat', { body: { type: T.BROADCAST, name: 'Admin news', user_id: U.U1.id } });
    assert.ok(res.status === 200 || res.status === 201, `${res.status} ${res.text}`);
    b = res.json;
    assertObjectId(b._id);
    assert.equal(b.type, T.BROADCAST);
    assert.equal(b.name, 'Admin news');
    assert.equal(b.user_id, U.U1.id);
    assert.equal(b.xmpp_room_jid, `${app.id}_${b._id}@muc.localhost`);
    created.push(b._id);
    const seen = await dialogAs(CB, U.U3, b._id);
    assert.equal(seen?._id, b._id, 'U3 lists the broadcast dialog');
    const listed = await admin('GET', '/admin/chat/list', { query: { limit: 1 } });
    assert.equal(listed.json.items[0]._id, b._id, 'newest first');
    assert.equal(listed.json.total_entries, created.length);
  });

  it('a user_id of another app (or none) is refused', async () => {
    const res = await admin('POST', '/admin/chat', { body: { type: T.BROADCAST, name: 'ownerless' } });
    assert.ok([400, 404, 422].includes(res.status), `no user_id: ${res.status} ${res.text}`);
    const ghost = await admin('POST', '/admin/chat', { body: { type: T.BROADCAST, name: 'ghost', user_id: 987654321 } });
    assert.ok([400, 404, 422].includes(ghost.status), `unknown user_id: ${ghost.status} ${ghost.text}`);
    const count = await admin('GET', '/admin/chat/list', { query: { limit: 1 } });
    assert.equal(count.json.total_entries, created.length, 'nothing was created');
  });
});

describe('GET /admin/chat/messages/list', () => {
  it("lists a dialog's messages with custom fields", async () => {
    const res = await admin('GET', '/admin/chat/messages/list', { query: { chat_dialog_id: gm._id } });
    assert.equal(res.status, 200, res.text);
    const body = res.json;
    assert.equal(body.total_entries, 3);
    assert.equal(body.skip, 0);
    assert.equal(body.limit, 100);
    assert.deepEqual(body.items.map((m) => m._id).sort(), msgs.map((m) => m._id).sort());
    const first = body.items.find((m) => m._id === msgs[0]._id);
    assert.equal(first.chat_dialog_id, gm._id);
    assert.equal(first.message, 'first');
    assert.equal(first.sender_id, U.U1.id);
    assert.equal(first.mission, 'take over the planet', 'custom fields are top-level');
    assert.equal(first.date_sent, msgs[0].date_sent);
  });

  it('deleted_for_ids names the users who deleted a message for themselves', async () => {
    as(CB, U.U2);
    await CB.chat.message.delete([msgs[0]._id]);
    assert.ok(!(await messagesAs(CB, U.U2, gm._id)).some((m) => m._id === msgs[0]._id), 'hidden for U2');
    const res = await admin('GET', '/admin/chat/messages/list', { query: { chat_dialog_id: gm._id } });
    const first = res.json.items.find((m) => m._id === msgs[0]._id);
    assert.ok(first, 'the admin still sees a message deleted for one user');
    assert.deepEqual(first.deleted_for_ids, [U.U2.id]);
    const second = res.json.items.find((m) => m._id === msgs[1]._id);
    assert.deepEqual(second.deleted_for_ids ?? [], []);
  });

  it('pages by _id[lt] and limit', async () => {
    const p1 = await admin('GET', '/admin/chat/messages/list', { query: { chat_dialog_id: gm._id, limit: 2 } });
    assert.equal(p1.json.items.length, 2);
    assert.equal(p1.json.limit, 2);
    assert.equal(p1.json.total_entries, 3);
    const ids = p1.json.items.map((m) => m._id);
    const lowest = [...ids].sort()[0];
    const p2 = await admin('GET', '/admin/chat/messages/list', {
      query: { chat_dialog_id: gm._id, limit: 2, '_id[lt]': lowest },
    });
    const all = [...ids, ...p2.json.items.map((m) => m._id)];
    assert.deepEqual(all.sort(), msgs.map((m) => m._id).sort(), 'newest first: two pages cover all three');
  });

  it('without chat_dialog_id lists messages of every dialog of the app', async () => {
    const res = await admin('GET', '/admin/chat/messages/list');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.total_entries, 4);
    assert.ok(res.json.items.some((m) => m.message === 'elsewhere'));
  });
});

describe('PUT /admin/chat/<id>', () => {
  it('{user_id, is_muted:true} puts the user in silent_ids; false takes him out', async () => {
    const res = await admin('PUT', `/admin/chat/${gm._id}`, { body: { user_id: U.U2.id, is_muted: true } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json._id, gm._id);
    assert.deepEqual(res.json.silent_ids, [U.U2.id]);
    assert.deepEqual((await adminDialog(gm._id)).silent_ids, [U.U2.id], 'stored');

    const un = await admin('PUT', `/admin/chat/${gm._id}`, { body: { user_id: U.U2.id, is_muted: false } });
    assert.equal(un.status, 200, un.text);
    assert.deepEqual(un.json.silent_ids ?? [], []);
    assert.deepEqual((await adminDialog(gm._id)).silent_ids ?? [], []);
  });

  it('takes the Update Dialog fields (name, description)', async () => {
    const res = await admin('PUT', `/admin/chat/${gm._id}`, {
      body: { name: 'renamed by admin', description: 'set by the admin API' },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.name, 'renamed by admin');
    assert.equal(res.json.description, 'set by the admin API');
    const seen = await dialogAs(CB, U.U2, gm._id);
    assert.equal(seen.name, 'renamed by admin', 'users see it');
    assert.equal(seen.description, 'set by the admin API');
  });

  it('an unknown dialog is 404', async () => {
    const res = await admin('PUT', `/admin/chat/${MISSING_ID}`, { body: { name: 'x' } });
    assert.equal(res.status, 404, res.text);
  });

  it('deleted_ids names the users who deleted a private dialog for themselves', async () => {
    // Deleting a group "for me" leaves it (the user drops out of occupants_ids); a private dialog
    // stays with both users and records who hid it.
    as(CB, U.U1);
    const p = await CB.chat.dialog.create({ type: T.PRIVATE, occupants_ids: [U.U3.id] });
    created.push(p._id);
    assert.deepEqual((await adminDialog(p._id)).deleted_ids ?? [], []);
    as(CB, U.U3);
    await CB.chat.dialog.delete(p._id);
    assert.equal(await dialogAs(CB, U.U3, p._id), undefined, 'hidden for U3');
    const d = await adminDialog(p._id);
    assert.ok(d, 'the admin still sees it');
    assert.deepEqual(d.deleted_ids, [U.U3.id]);
    assert.deepEqual(sortedIds(d.occupants_ids), sortedIds([U.U1.id, U.U3.id]));
  });
});

describe('application isolation', () => {
  let appB;
  let bUser;
  let bDialog;
  before(async () => {
    appB = await server.createApp('admin-b');
    const B = await signupUsers(CB, server, ['BUser'], appB);
    bUser = B.BUser;
    as(CB, bUser);
    bDialog = await CB.chat.dialog.create({ type: T.PUBLIC, name: 'app B only' });
  });

  it("app B's key lists only app B's dialogs", async () => {
    const res = await adminFetch(server, appB.api_key, 'GET', '/admin/chat/list');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.total_entries, 1);
    assert.deepEqual(res.json.items.map((d) => d._id), [bDialog._id]);
    const a = await admin('GET', '/admin/chat/list', { query: { limit: 100 } });
    assert.equal(a.json.total_entries, created.length, "app A's count is unchanged");
    assert.ok(!a.json.items.some((d) => d._id === bDialog._id));
  });

  it("app B's key cannot read app A's messages or change app A's dialogs", async () => {
    const msgsRes = await adminFetch(server, appB.api_key, 'GET', '/admin/chat/messages/list', {
      query: { chat_dialog_id: gm._id },
    });
    if (msgsRes.status === 200) assert.deepEqual(msgsRes.json.items, [], msgsRes.text);
    else assert.ok([403, 404].includes(msgsRes.status), msgsRes.text);
    const all = await adminFetch(server, appB.api_key, 'GET', '/admin/chat/messages/list');
    assert.equal(all.status, 200, all.text);
    assert.deepEqual(all.json.items, []);

    const put = await adminFetch(server, appB.api_key, 'PUT', `/admin/chat/${gm._id}`, { body: { name: 'cross-app' } });
    assert.ok([403, 404].includes(put.status), `cross-app PUT: ${put.status} ${put.text}`);
    assert.equal((await adminDialog(gm._id)).name, 'renamed by admin', 'unchanged');
    const mute = await adminFetch(server, appB.api_key, 'PUT', `/admin/chat/${gm._id}`, {
      body: { user_id: U.U1.id, is_muted: true },
    });
    assert.ok([403, 404].includes(mute.status), mute.text);
    assert.deepEqual((await adminDialog(gm._id)).silent_ids ?? [], []);
  });

  it("app B's users cannot bring app A's users into a dialog", async () => {
    as(CB, bUser);
    const err1 = await CB.chat.dialog.create({ type: T.GROUP, name: 'cross', occupants_ids: [U.U1.id] }).catch((e) => e);
    assert.ok([400, 404, 422].includes(err1?.code), `group with a foreign occupant: ${JSON.stringify(err1)}`);
    const err2 = await CB.chat.message.create({ recipient_id: U.U2.id, message: 'hi other app' }).catch((e) => e);
    assert.ok([400, 404, 422].includes(err2?.code), `message to a foreign user: ${JSON.stringify(err2)}`);
    const res = await adminFetch(server, appB.api_key, 'GET', '/admin/chat/list');
    assert.equal(res.json.total_entries, 1, 'nothing was created in app B');
  });

  it("app B's key cannot create a broadcast owned by app A's user", async () => {
    const res = await adminFetch(server, appB.api_key, 'POST', '/admin/chat', {
      body: { type: T.BROADCAST, name: 'cross-app', user_id: U.U1.id },
    });
    assert.ok([400, 403, 404, 422].includes(res.status), `${res.status} ${res.text}`);
    const b = await adminFetch(server, appB.api_key, 'GET', '/admin/chat/list');
    assert.equal(b.json.total_entries, 1);
  });
});
