// Chat messages (REST) through the real connectycube@6.1.2 SDK: create (attachments, custom
// fields, by recipient_id), list (sort, paging, date_sent filters, mark_as_read), the dialog's
// last_message* fields, unread counts, update (read, delivered, edit), delete (for me, force),
// reactions and clearHistory.
//
// One server for the whole file; users take turns with the SDK session via `as(CB, user)`.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer } from '../lib/server.mjs';
import { loadSdk, sleep } from '../lib/util.mjs';
import {
  T,
  MISSING_ID,
  signupUsers,
  as,
  assertObjectId,
  assertUnixNow,
  sortedIds,
  dialogAs,
  messagesAs,
  refused,
  post,
} from '../lib/chat.mjs';

const CB = await loadSdk();

let server;
let U;
let g; // group A, B, C
let p; // private A, B

before(async () => {
  server = await startServer();
  U = await signupUsers(CB, server, ['A', 'B', 'C', 'D']);
  as(CB, U.A);
  g = await CB.chat.dialog.create({ type: T.GROUP, name: 'Messages', occupants_ids: [U.B.id, U.C.id] });
  p = await CB.chat.dialog.create({ type: T.PRIVATE, occupants_ids: [U.B.id] });
});

after(async () => {
  await server?.stop();
});

const unread = async (user, ids) => {
  as(CB, user);
  return CB.chat.message.unreadCount({ chat_dialog_ids: ids });
};

describe('chat.message.create', () => {
  let m1;

  it('answers the Message: _id, date_sent, sender_id, attachments, custom field on top level', async () => {
    as(CB, U.A);
    m1 = await CB.chat.message.create({
      chat_dialog_id: g._id,
      message: 'hello group',
      attachments: [{ type: 'image', uid: 'u1' }],
      customField: 'x',
    });
    assertObjectId(m1._id, 'message._id');
    assert.equal(m1.chat_dialog_id, g._id);
    assert.equal(m1.message, 'hello group');
    assert.equal(m1.sender_id, U.A.id);
    assertUnixNow(m1.date_sent);
    assert.equal(m1.attachments?.length, 1, JSON.stringify(m1.attachments));
    assert.equal(m1.attachments[0].type, 'image');
    assert.equal(m1.attachments[0].uid, 'u1');
    assert.equal(m1.customField, 'x', `custom parameters are top-level fields: ${JSON.stringify(m1)}`);
    assert.ok(!m1.recipient_id, `a group message has recipient_id 0/null, got ${m1.recipient_id}`);
    assert.ok(m1.created_at != null && m1.updated_at != null);
    assert.ok(Array.isArray(m1.read_ids) && m1.read_ids.includes(U.A.id), `read_ids has the sender: ${JSON.stringify(m1.read_ids)}`);
    assert.ok(!m1.read_ids.includes(U.B.id));
  });

  it("the dialog's last_message* follow it; other occupants get an unread message", async () => {
    const forA = await dialogAs(CB, U.A, g._id);
    assert.equal(forA.last_message, 'hello group');
    assert.equal(forA.last_message_id, m1._id);
    assert.equal(forA.last_message_user_id, U.A.id);
    assert.equal(forA.last_message_date_sent, m1.date_sent);
    assert.equal(forA.unread_messages_count, 0, "the sender's own message is not unread");
    const forB = await dialogAs(CB, U.B, g._id);
    assert.equal(forB.unread_messages_count, 1);
    assert.equal(forB.last_message_id, m1._id);
    assert.equal((await dialogAs(CB, U.C, g._id)).unread_messages_count, 1);
  });

  it('the list shows the stored message with its attachment and custom field', async () => {
    const items = await messagesAs(CB, U.B, g._id);
    const got = items.find((m) => m._id === m1._id);
    assert.ok(got, `m1 missing: ${JSON.stringify(items)}`);
    assert.equal(got.message, 'hello group');
    assert.equal(got.customField, 'x');
    assert.equal(got.attachments[0]?.uid, 'u1');
    assert.equal(got.date_sent, m1.date_sent);
  });

  it('in a private dialog recipient_id is the other user', async () => {
    const m = await post(CB, U.A, p._id, 'psst');
    assert.equal(m.chat_dialog_id, p._id);
    assert.equal(m.recipient_id, U.B.id);
  });

  it('with recipient_id instead of a dialog it creates (then reuses) the private dialog', async () => {
    as(CB, U.A);
    const m = await CB.chat.message.create({ recipient_id: U.C.id, message: 'hi C' });
    assertObjectId(m.chat_dialog_id, 'chat_dialog_id of a message sent by recipient_id');
    assert.equal(m.recipient_id, U.C.id);
    assert.equal(m.sender_id, U.A.id);
    const d = await dialogAs(CB, U.C, m.chat_dialog_id);
    assert.equal(d?.type, T.PRIVATE, `C sees the new private dialog: ${JSON.stringify(d)}`);
    assert.deepEqual(sortedIds(d.occupants_ids), sortedIds([U.A.id, U.C.id]));
    assert.equal(d.last_message, 'hi C');
    assert.equal(d.unread_messages_count, 1);

    as(CB, U.A);
    const again = await CB.chat.message.create({ recipient_id: U.C.id, message: 'hi again' });
    assert.equal(again.chat_dialog_id, m.chat_dialog_id, 'the same private dialog is reused');
    const same = await CB.chat.dialog.create({ type: T.PRIVATE, occupants_ids: [U.C.id] });
    assert.equal(same._id, m.chat_dialog_id, 'dialog.create finds it too');
  });

  it('recipient_id must be another existing user', async () => {
    as(CB, U.A);
    await refused(CB.chat.message.create({ recipient_id: 987654321, message: 'void' }), [404, 422], 'unknown recipient');
    await refused(CB.chat.message.create({ recipient_id: U.A.id, message: 'me' }), [400, 422], 'recipient is the sender');
  });

  it('send_to_chat=1 and markable=1 are accepted and the message is stored', async () => {
    const m = await post(CB, U.A, g._id, 'sent to chat', { send_to_chat: 1, markable: 1 });
    assert.ok((await messagesAs(CB, U.C, g._id)).some((x) => x._id === m._id));
  });

  it('is refused for a non-occupant, an unknown dialog, or without a dialog and a recipient', async () => {
    as(CB, U.D);
    await refused(CB.chat.message.create({ chat_dialog_id: g._id, message: 'let me in' }), [403, 404], 'outsider posts');
    await refused(CB.chat.message.create({ chat_dialog_id: MISSING_ID, message: 'void' }), 404, 'unknown dialog');
    await refused(CB.chat.message.create({ message: 'nowhere' }), [400, 422], 'no dialog, no recipient');
    const items = await messagesAs(CB, U.A, g._id);
    assert.ok(!items.some((m) => m.message === 'let me in'), "the outsider's message was not stored");
  });
});

describe('chat.message.list', () => {
  let h; // group A, B with five messages
  const sent = [];

  before(async () => {
    as(CB, U.A);
    h = await CB.chat.dialog.create({ type: T.GROUP, name: 'History', occupants_ids: [U.B.id] });
    for (let i = 0; i < 3; i++) sent.push(await post(CB, U.A, h._id, `m${i}`));
    await sleep(1100); // date_sent has whole seconds: m3, m4 are strictly later than m0..m2
    for (let i = 3; i < 5; i++) sent.push(await post(CB, U.A, h._id, `m${i}`));
  });

  it('answers {skip, limit, items}, ascending by date_sent (creation order) by default', async () => {
    as(CB, U.B);
    const res = await CB.chat.message.list({ chat_dialog_id: h._id, mark_as_read: 0 });
    assert.equal(res.skip, 0, JSON.stringify(res).slice(0, 300));
    assert.equal(typeof res.limit, 'number');
    assert.deepEqual(res.items.map((m) => m.message), ['m0', 'm1', 'm2', 'm3', 'm4']);
    assert.deepEqual(res.items.map((m) => m._id), sent.map((m) => m._id));
    for (const m of res.items) {
      assert.equal(m.chat_dialog_id, h._id);
      assert.equal(m.sender_id, U.A.id);
    }
  });

  it('sort_desc=date_sent with limit and skip pages newest first', async () => {
    as(CB, U.B);
    const p1 = await CB.chat.message.list({ chat_dialog_id: h._id, sort_desc: 'date_sent', limit: 2, skip: 0, mark_as_read: 0 });
    assert.deepEqual(p1.items.map((m) => m.message), ['m4', 'm3']);
    assert.equal(p1.limit, 2);
    const p2 = await CB.chat.message.list({ chat_dialog_id: h._id, sort_desc: 'date_sent', limit: 2, skip: 2, mark_as_read: 0 });
    assert.deepEqual(p2.items.map((m) => m.message), ['m2', 'm1']);
    assert.equal(p2.skip, 2);
    const p3 = await CB.chat.message.list({ chat_dialog_id: h._id, sort_desc: 'date_sent', limit: 2, skip: 4, mark_as_read: 0 });
    assert.deepEqual(p3.items.map((m) => m.message), ['m0']);
  });

  it('filters by date_sent[lt] / [gte] and by sender_id', async () => {
    const cut = sent[3].date_sent;
    assert.ok(cut > sent[2].date_sent, 'the test slept past a second boundary');
    as(CB, U.B);
    const older = await CB.chat.message.list({ chat_dialog_id: h._id, date_sent: { lt: cut }, mark_as_read: 0 });
    assert.deepEqual(older.items.map((m) => m.message), ['m0', 'm1', 'm2']);
    const newer = await CB.chat.message.list({ chat_dialog_id: h._id, date_sent: { gte: cut }, mark_as_read: 0 });
    assert.deepEqual(newer.items.map((m) => m.message), ['m3', 'm4']);
    const byB = await CB.chat.message.list({ chat_dialog_id: h._id, sender_id: U.B.id, mark_as_read: 0 });
    assert.deepEqual(byB.items, []);
  });

  it('mark_as_read=0 leaves them unread; a plain list marks them read', async () => {
    const before = await dialogAs(CB, U.B, h._id);
    assert.equal(before.unread_messages_count, 5, 'the mark_as_read=0 lists above changed nothing');
    as(CB, U.B);
    await CB.chat.message.list({ chat_dialog_id: h._id });
    const after = await dialogAs(CB, U.B, h._id);
    assert.equal(after.unread_messages_count, 0, 'listing marks them read');
    const seenByA = await messagesAs(CB, U.A, h._id);
    for (const m of seenByA) assert.ok(m.read_ids.includes(U.B.id), `${m.message}.read_ids: ${JSON.stringify(m.read_ids)}`);
  });

  it('count=1 answers {items: {count: N}}', async () => {
    as(CB, U.A);
    const res = await CB.chat.message.list({ chat_dialog_id: h._id, count: 1, mark_as_read: 0 });
    assert.equal(res.items?.count, 5, JSON.stringify(res));
  });

  it('an oversize page is a clear client error (limit is at most 100)', async () => {
    as(CB, U.A);
    await refused(CB.chat.message.list({ chat_dialog_id: h._id, limit: 1000, mark_as_read: 0 }), [400], 'limit=1000');
    const res = await CB.chat.message.list({ chat_dialog_id: h._id, limit: 100, mark_as_read: 0 });
    assert.equal(res.items.length, 5);
  });

  it('a non-occupant cannot list the messages', async () => {
    as(CB, U.D);
    await refused(CB.chat.message.list({ chat_dialog_id: h._id }), [403, 404], 'outsider lists messages');
  });
});

describe('concurrent requests', () => {
  let cc;
  before(async () => {
    as(CB, U.A);
    cc = await CB.chat.dialog.create({ type: T.GROUP, name: 'Concurrent', occupants_ids: [U.B.id] });
  });

  it('20 message.create at once all succeed and are all counted unread', async () => {
    as(CB, U.A);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => CB.chat.message.create({ chat_dialog_id: cc._id, message: `burst ${i}` }).catch((e) => e))
    );
    const failed = results.filter((r) => !r?._id);
    assert.deepEqual(failed, [], `${failed.length} of 20 concurrent creates failed: ${JSON.stringify(failed[0])}`);
    const ids = results.map((r) => r._id);
    assert.equal(new Set(ids).size, 20, 'distinct ids');
    const items = await messagesAs(CB, U.B, cc._id);
    assert.deepEqual(items.map((m) => m._id).sort(), [...ids].sort());
    const d = await dialogAs(CB, U.B, cc._id);
    assert.equal(d.unread_messages_count, 20);
    assert.ok(ids.includes(d.last_message_id));
  });

  it('20 read=1 updates at once all succeed', async () => {
    const items = await messagesAs(CB, U.B, cc._id);
    as(CB, U.B);
    const results = await Promise.all(
      items.map((m) => CB.chat.message.update(m._id, { chat_dialog_id: cc._id, read: 1 }).catch((e) => e))
    );
    const failed = results.filter((r) => typeof r !== 'string');
    assert.deepEqual(failed, [], `${failed.length} of ${items.length} concurrent read updates failed: ${JSON.stringify(failed[0])}`);
    assert.equal((await dialogAs(CB, U.B, cc._id)).unread_messages_count, 0);
  });

  it('the same private dialog created 4 times at once is one dialog', async () => {
    as(CB, U.C);
    const results = await Promise.all(
      [1, 2, 3, 4].map(() => CB.chat.dialog.create({ type: T.PRIVATE, occupants_ids: [U.D.id] }).catch((e) => e))
    );
    assert.ok(results.every((r) => r?._id), JSON.stringify(results.find((r) => !r?._id)));
    assert.equal(new Set(results.map((r) => r._id)).size, 1, JSON.stringify(results.map((r) => r._id)));
  });
});

describe('unread counts: chat.message.unreadCount', () => {
  let d1;
  let d2;
  before(async () => {
    as(CB, U.C);
    d1 = await CB.chat.dialog.create({ type: T.GROUP, name: 'unread 1', occupants_ids: [U.D.id] });
    d2 = await CB.chat.dialog.create({ type: T.GROUP, name: 'unread 2', occupants_ids: [U.D.id] });
  });

  it('counts per dialog and in total', async () => {
    assert.deepEqual(await unread(U.D, [d1._id, d2._id]), { total: 0, [d1._id]: 0, [d2._id]: 0 });
    await post(CB, U.C, d1._id, 'one');
    await post(CB, U.C, d1._id, 'two');
    await post(CB, U.C, d2._id, 'three');
    const res = await unread(U.D, [d1._id, d2._id]);
    assert.deepEqual(res, { total: 3, [d1._id]: 2, [d2._id]: 1 });
    assert.deepEqual(await unread(U.C, [d1._id, d2._id]), { total: 0, [d1._id]: 0, [d2._id]: 0 }, 'own messages are not unread');
    const one = await unread(U.D, [d2._id]);
    assert.equal(one.total, 1);
    assert.equal(one[d2._id], 1);
  });

  it('without dialog ids answers the total over all dialogs', async () => {
    as(CB, U.D);
    const res = await CB.chat.message.unreadCount();
    assert.equal(res.total, 3, JSON.stringify(res));
  });

  it("dialog.list's unread_messages_count agrees", async () => {
    assert.equal((await dialogAs(CB, U.D, d1._id)).unread_messages_count, 2);
    assert.equal((await dialogAs(CB, U.D, d2._id)).unread_messages_count, 1);
  });
});

describe('chat.message.update', () => {
  let k; // group A, B, C
  let m;
  before(async () => {
    as(CB, U.A);
    k = await CB.chat.dialog.create({ type: T.GROUP, name: 'Updates', occupants_ids: [U.B.id, U.C.id] });
    m = await post(CB, U.A, k._id, 'original');
    await post(CB, U.A, k._id, 'second');
  });

  it('read=1 (TEXT) adds the reader to read_ids and lowers the unread count', async () => {
    assert.equal((await dialogAs(CB, U.B, k._id)).unread_messages_count, 2);
    as(CB, U.B);
    const out = await CB.chat.message.update(m._id, { chat_dialog_id: k._id, read: 1 });
    assert.equal(typeof out, 'string', 'message.update is a TEXT call');
    const stored = (await messagesAs(CB, U.A, k._id)).find((x) => x._id === m._id);
    assert.ok(stored.read_ids.includes(U.B.id), JSON.stringify(stored.read_ids));
    assert.ok(!stored.read_ids.includes(U.C.id));
    assert.equal((await dialogAs(CB, U.B, k._id)).unread_messages_count, 1);
    assert.deepEqual(await unread(U.B, [k._id]), { total: 1, [k._id]: 1 });
  });

  it('delivered=1 adds the user to delivered_ids', async () => {
    as(CB, U.C);
    await CB.chat.message.update(m._id, { chat_dialog_id: k._id, delivered: 1 });
    const stored = (await messagesAs(CB, U.A, k._id)).find((x) => x._id === m._id);
    assert.ok(stored.delivered_ids.includes(U.C.id), JSON.stringify(stored.delivered_ids));
    assert.ok(!stored.read_ids.includes(U.C.id), 'delivered is not read');
  });

  it('the sender edits the text', async () => {
    as(CB, U.A);
    await CB.chat.message.update(m._id, { chat_dialog_id: k._id, message: 'edited' });
    const stored = (await messagesAs(CB, U.B, k._id)).find((x) => x._id === m._id);
    assert.equal(stored.message, 'edited');
    assert.equal(stored.sender_id, U.A.id);
  });

  it("nobody else can edit someone's message: 403 and the text stays", async () => {
    as(CB, U.B);
    await refused(CB.chat.message.update(m._id, { chat_dialog_id: k._id, message: 'forged' }), 403, 'edit of another user’s message');
    const stored = (await messagesAs(CB, U.A, k._id)).find((x) => x._id === m._id);
    assert.equal(stored.message, 'edited');
  });

  it('update without a message id marks the whole dialog read (PUT /chat/Message.json)', async () => {
    await post(CB, U.A, k._id, 'third');
    assert.equal((await dialogAs(CB, U.C, k._id)).unread_messages_count, 3);
    as(CB, U.C);
    await CB.chat.message.update('', { chat_dialog_id: k._id, read: 1 });
    assert.equal((await dialogAs(CB, U.C, k._id)).unread_messages_count, 0);
    for (const x of await messagesAs(CB, U.A, k._id)) assert.ok(x.read_ids.includes(U.C.id), `${x.message} read by C`);
    assert.equal((await dialogAs(CB, U.B, k._id)).unread_messages_count, 2, "B's count is B's own");
  });

  it('an unknown message id is 404', async () => {
    as(CB, U.A);
    await refused(CB.chat.message.update(MISSING_ID, { chat_dialog_id: k._id, message: 'x' }), 404, 'update missing message');
  });
});

describe('chat.message.delete', () => {
  let k;
  before(async () => {
    as(CB, U.A);
    k = await CB.chat.dialog.create({ type: T.GROUP, name: 'Deletes', occupants_ids: [U.B.id] });
  });

  it('without force (TEXT) hides the messages for the current user only', async () => {
    const a = await post(CB, U.A, k._id, 'hide me 1');
    const b = await post(CB, U.A, k._id, 'hide me 2');
    const keep = await post(CB, U.A, k._id, 'keep me');
    as(CB, U.A);
    const out = await CB.chat.message.delete([a._id, b._id]);
    assert.equal(typeof out, 'string', 'message.delete is a TEXT call');
    const forA = (await messagesAs(CB, U.A, k._id)).map((x) => x._id);
    assert.ok(!forA.includes(a._id) && !forA.includes(b._id), 'hidden for A');
    assert.ok(forA.includes(keep._id));
    const forB = (await messagesAs(CB, U.B, k._id)).map((x) => x._id);
    assert.ok(forB.includes(a._id) && forB.includes(b._id), 'B still has them');
  });

  it('with force=1 the sender removes own messages for everyone', async () => {
    const gone = await post(CB, U.B, k._id, 'regret');
    as(CB, U.B);
    await CB.chat.message.delete([gone._id], { force: 1 });
    assert.ok(!(await messagesAs(CB, U.A, k._id)).some((x) => x._id === gone._id), 'gone for A');
    assert.ok(!(await messagesAs(CB, U.B, k._id)).some((x) => x._id === gone._id), 'gone for B');
  });

  it('a single id string works too', async () => {
    const one = await post(CB, U.A, k._id, 'single');
    as(CB, U.A);
    await CB.chat.message.delete(one._id, { force: 1 });
    assert.ok(!(await messagesAs(CB, U.B, k._id)).some((x) => x._id === one._id));
  });
});

describe('reactions', () => {
  let r;
  let m;
  before(async () => {
    as(CB, U.A);
    r = await CB.chat.dialog.create({ type: T.GROUP, name: 'Reactions', occupants_ids: [U.B.id, U.C.id] });
    m = await post(CB, U.A, r._id, 'react to me');
  });

  it('addReaction (TEXT) and listReactions → {emoji: [userIds]}', async () => {
    as(CB, U.B);
    const out = await CB.chat.message.addReaction(m._id, '🔥');
    assert.equal(typeof out, 'string', 'addReaction is a TEXT call');
    as(CB, U.C);
    await CB.chat.message.addReaction(m._id, '🔥');
    as(CB, U.A);
    await CB.chat.message.addReaction(m._id, '👍');
    const res = await CB.chat.message.listReactions(m._id);
    assert.deepEqual(Object.keys(res).sort(), ['👍', '🔥'].sort(), JSON.stringify(res));
    assert.deepEqual(sortedIds(res['🔥']), sortedIds([U.B.id, U.C.id]));
    assert.deepEqual(sortedIds(res['👍']), [U.A.id]);
  });

  it('reacting twice with the same emoji counts once', async () => {
    as(CB, U.B);
    await CB.chat.message.addReaction(m._id, '🔥');
    const res = await CB.chat.message.listReactions(m._id);
    assert.deepEqual(sortedIds(res['🔥']), sortedIds([U.B.id, U.C.id]));
  });

  it('the message carries reactions {own, total} (SDK Message type)', async () => {
    const got = (await messagesAs(CB, U.B, r._id)).find((x) => x._id === m._id);
    assert.ok(got.reactions, `reactions missing: ${JSON.stringify(got)}`);
    assert.deepEqual(got.reactions.own, ['🔥']);
    assert.deepEqual(got.reactions.total, { '🔥': 2, '👍': 1 });
  });

  it('removeReaction and updateReaction(add, remove)', async () => {
    as(CB, U.C);
    await CB.chat.message.removeReaction(m._id, '🔥');
    as(CB, U.A);
    await CB.chat.message.updateReaction(m._id, '😂', '👍');
    const res = await CB.chat.message.listReactions(m._id);
    assert.deepEqual(sortedIds(res['🔥']), [U.B.id]);
    assert.deepEqual(sortedIds(res['😂']), [U.A.id]);
    assert.ok(!res['👍'] || res['👍'].length === 0, `👍 was removed: ${JSON.stringify(res)}`);
  });

  it('an outsider cannot react or see reactions', async () => {
    as(CB, U.D);
    await refused(CB.chat.message.addReaction(m._id, '💩'), [403, 404], 'outsider reacts');
    await refused(CB.chat.message.listReactions(m._id), [403, 404], 'outsider lists reactions');
    as(CB, U.A);
    const res = await CB.chat.message.listReactions(m._id);
    assert.ok(!('💩' in res));
  });
});

describe('chat.dialog.clearHistory', () => {
  it('(TEXT) clears the history for the current user only', async () => {
    as(CB, U.A);
    const c = await CB.chat.dialog.create({ type: T.GROUP, name: 'Clear', occupants_ids: [U.B.id] });
    await post(CB, U.A, c._id, 'one');
    await post(CB, U.B, c._id, 'two');
    as(CB, U.A);
    const out = await CB.chat.dialog.clearHistory(c._id);
    assert.equal(typeof out, 'string', 'clearHistory is a TEXT call');
    assert.deepEqual(await messagesAs(CB, U.A, c._id), [], 'A sees no history');
    assert.equal((await messagesAs(CB, U.B, c._id)).length, 2, 'B keeps the history');
    assert.equal((await dialogAs(CB, U.A, c._id))?._id, c._id, 'the dialog itself stays');
    const later = await post(CB, U.B, c._id, 'three');
    assert.deepEqual((await messagesAs(CB, U.A, c._id)).map((x) => x._id), [later._id], 'new messages show up again');
  });
});
