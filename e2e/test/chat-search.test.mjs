// chat.search through the real connectycube@6.1.2 SDK:
// GET /chat/search.json?search_text=…&chat_dialog_ids=D1,D2 → {results: {dialogs, messages, users}}.
//
// The seed: search_text "Should be longer than 4 symbols. Performs 'or' search. For an exact search,
// you need to wrap the search phrase in quotes."; chat_dialog_ids "Max can include 10 items".
// Only dialogs the user belongs to are searched.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer } from '../lib/server.mjs';
import { loadSdk } from '../lib/util.mjs';
import { T, signupUsers, as, refused, post } from '../lib/chat.mjs';

const CB = await loadSdk();

let server;
let U;
let g1; // A, B — "Lorem ipsum club"
let g2; // A, C
let secret; // B, C only
const M = {};

before(async () => {
  server = await startServer();
  U = await signupUsers(CB, server, ['Alice Searcher', 'Zebulon Quartzite', 'Carol Other']);
  U.A = U['Alice Searcher'];
  U.B = U['Zebulon Quartzite'];
  U.C = U['Carol Other'];
  as(CB, U.A);
  g1 = await CB.chat.dialog.create({ type: T.GROUP, name: 'Lorem ipsum club', occupants_ids: [U.B.id] });
  g2 = await CB.chat.dialog.create({ type: T.GROUP, name: 'Second room', occupants_ids: [U.C.id] });
  as(CB, U.B);
  secret = await CB.chat.dialog.create({ type: T.GROUP, name: 'Secret lorem', occupants_ids: [U.C.id] });

  M.helloWorld = await post(CB, U.A, g1._id, 'hello world from the club');
  M.helloThere = await post(CB, U.B, g1._id, 'hello there');
  M.unrelated = await post(CB, U.A, g1._id, 'completely unrelated text');
  M.otherWorld = await post(CB, U.C, g2._id, 'another hello world elsewhere');
  M.secret = await post(CB, U.B, secret._id, 'hello world secret');
});

after(async () => {
  await server?.stop();
});

const messageIds = (res) => (res.results?.messages ?? []).map((m) => m._id).sort();
/** The seed's example wraps users as {user: User}; the SDK type says User. Accept both. */
const userIds = (res) => (res.results?.users ?? []).map((u) => (u.user ? u.user.id : u.id));

describe('chat.search', () => {
  it('answers {results: {dialogs, messages, users}}', async () => {
    as(CB, U.A);
    const res = await CB.chat.search({ search_text: 'hello world' });
    assert.ok(res.results, JSON.stringify(res));
    assert.ok(Array.isArray(res.results.dialogs), 'results.dialogs');
    assert.ok(Array.isArray(res.results.messages), 'results.messages');
    assert.ok(Array.isArray(res.results.users), 'results.users');
  });

  it("'or' search over the user's own dialogs only", async () => {
    as(CB, U.A);
    const res = await CB.chat.search({ search_text: 'hello world' });
    const want = [M.helloWorld._id, M.helloThere._id, M.otherWorld._id].sort();
    assert.deepEqual(messageIds(res), want, `messages: ${JSON.stringify(res.results.messages.map((m) => m.message))}`);
    assert.ok(!messageIds(res).includes(M.secret._id), 'a dialog A is not in is never searched');
    const hit = res.results.messages.find((m) => m._id === M.helloWorld._id);
    assert.equal(hit.message, 'hello world from the club');
    assert.equal(hit.chat_dialog_id, g1._id);
    assert.equal(hit.sender_id, U.A.id);
  });

  it('a quoted phrase is an exact search', async () => {
    as(CB, U.A);
    const res = await CB.chat.search({ search_text: '"hello world"' });
    assert.deepEqual(messageIds(res), [M.helloWorld._id, M.otherWorld._id].sort());
  });

  it('chat_dialog_ids narrows the search (SDK joins them with ",")', async () => {
    as(CB, U.A);
    const res = await CB.chat.search({ search_text: 'hello world', chat_dialog_ids: [g1._id] });
    assert.deepEqual(messageIds(res), [M.helloWorld._id, M.helloThere._id].sort());
    const both = await CB.chat.search({ search_text: 'elsewhere', chat_dialog_ids: [g1._id, g2._id] });
    assert.deepEqual(messageIds(both), [M.otherWorld._id]);
  });

  it("naming someone else's dialog in chat_dialog_ids does not reveal it", async () => {
    as(CB, U.A);
    const res = await CB.chat.search({ search_text: 'secret', chat_dialog_ids: [secret._id] }).catch((e) => e);
    if (res && 'code' in res && !('results' in res)) {
      assert.ok([403, 404].includes(res.code), JSON.stringify(res));
    } else {
      assert.deepEqual(messageIds(res), [], JSON.stringify(res));
      assert.ok(!res.results.dialogs.some((d) => d._id === secret._id));
    }
  });

  it('finds dialogs by name', async () => {
    as(CB, U.A);
    const res = await CB.chat.search({ search_text: 'Lorem ipsum' });
    const ids = res.results.dialogs.map((d) => d._id);
    assert.ok(ids.includes(g1._id), `dialogs: ${JSON.stringify(res.results.dialogs.map((d) => d.name))}`);
    assert.ok(!ids.includes(secret._id), "B and C's dialog is not A's to find");
    assert.ok(!ids.includes(g2._id));
  });

  it('users are the people of the found dialogs and messages (as in the seed example)', async () => {
    // Seed example: dialog occupants [23, 2172] + message sender 2172 → users 23 and 2172.
    as(CB, U.A);
    const res = await CB.chat.search({ search_text: 'elsewhere' }); // one message, sent by C in g2
    assert.ok(userIds(res).includes(U.C.id), `users: ${JSON.stringify(res.results.users)}`);
    const byDialog = await CB.chat.search({ search_text: 'Lorem ipsum' }); // dialog g1: A and B
    const ids = userIds(byDialog);
    assert.ok(ids.includes(U.A.id) && ids.includes(U.B.id), `users: ${JSON.stringify(ids)}`);
    assert.ok(!JSON.stringify(byDialog.results.users).includes('password'));
    const u = byDialog.results.users.map((x) => x.user ?? x).find((x) => x.id === U.B.id);
    assert.equal(u.full_name, 'Zebulon Quartzite');
    assert.equal(u.login, U.B.login);
  });

  it('search_text of 4 characters or fewer is refused', async () => {
    as(CB, U.A);
    const err = await refused(CB.chat.search({ search_text: 'hell' }), [400, 422], 'search_text of 4 chars');
    assert.ok(err.info?.errors, JSON.stringify(err.info));
    await refused(CB.chat.search({}), [400, 422], 'no search_text');
  });

  it('more than 10 chat_dialog_ids is refused; 10 is fine', async () => {
    as(CB, U.A);
    const ids = Array.from({ length: 11 }, (_, i) => `ffffffffffffffffffffff${String(i).padStart(2, '0')}`);
    await refused(CB.chat.search({ search_text: 'hello', chat_dialog_ids: ids }), [400, 422], '11 dialog ids');
    const ten = [g1._id, ...ids.slice(0, 9)];
    const res = await CB.chat.search({ search_text: 'hello', chat_dialog_ids: ten });
    assert.deepEqual(messageIds(res), [M.helloWorld._id, M.helloThere._id].sort());
  });

  it('start_date (lte) / end_date (gte) bound the messages; start_date needs end_date', async () => {
    as(CB, U.A);
    const now = Date.now();
    const within = await CB.chat.search({ search_text: 'elsewhere', start_date: now + 60_000, end_date: now - 3_600_000 });
    assert.deepEqual(messageIds(within), [M.otherWorld._id]);
    const before = await CB.chat.search({ search_text: 'elsewhere', start_date: now - 3_600_000, end_date: now - 7_200_000 });
    assert.deepEqual(messageIds(before), []);
    await refused(CB.chat.search({ search_text: 'elsewhere', start_date: now }), [400, 422], 'start_date without end_date');
  });

  it('full-text syntax in search_text is harmless: 200 or 4xx, never 5xx', async () => {
    as(CB, U.A);
    for (const text of ['hello"', '"unbalanced', 'hello* NEAR(world', 'AND OR NOT', 'body:hello', "it's here", '((((((', 'hello -world', '^hello', '%%%%%']) {
      const res = await CB.chat.search({ search_text: text }).catch((e) => e);
      if (res && 'code' in res && !('results' in res)) {
        assert.ok([400, 422].includes(res.code), `search_text ${JSON.stringify(text)}: ${JSON.stringify(res)}`);
      } else {
        assert.ok(Array.isArray(res.results?.messages), `search_text ${JSON.stringify(text)}: ${JSON.stringify(res)}`);
        assert.ok(!messageIds(res).includes(M.secret._id));
      }
    }
  });

  it('limit caps the number of messages', async () => {
    as(CB, U.A);
    const res = await CB.chat.search({ search_text: 'hello', limit: 1 });
    assert.equal(res.results.messages.length, 1, JSON.stringify(res.results.messages));
  });

  it('messages deleted for me are not found', async () => {
    as(CB, U.A);
    await CB.chat.message.delete([M.helloThere._id]);
    const res = await CB.chat.search({ search_text: 'there', chat_dialog_ids: [g1._id] });
    assert.deepEqual(messageIds(res), []);
    as(CB, U.B);
    const forB = await CB.chat.search({ search_text: 'there', chat_dialog_ids: [g1._id] });
    assert.deepEqual(messageIds(forB), [M.helloThere._id], 'B still finds it');
  });
});
