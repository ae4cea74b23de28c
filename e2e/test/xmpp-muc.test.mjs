// Group (type 2), public (type 4) and broadcast (type 1) dialogs in real time with the real SDK:
// muc.join/leave resolve, members receive whether or not they joined, the sender sees the reflection,
// history has the message, typing and markers flow, non-members are refused, a removed member is
// kicked and stops receiving, broadcasts reach every connected user and refuse regular users.

import { before, after, it } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, sdkConfig } from '../lib/server.mjs';
import { startPeer } from '../lib/peers.mjs';
import { adminFetch } from '../lib/chat.mjs';
import { uniq, sleep } from '../lib/util.mjs';

const PASSWORD = 'muc-pass-123';
let server;
const P = {}; // name -> {peer, id}

before(async () => {
  server = await startServer();
  const creds = { appId: server.app.id, authKey: server.app.auth_key };
  for (const name of ['alice', 'bob', 'carol', 'dave']) {
    const peer = await startPeer();
    await peer.call('init', creds, sdkConfig(server));
    const u = await peer.call('signupAndLogin', uniq(name), PASSWORD);
    assert.equal(await peer.call('connect', u.userId, u.token), true);
    P[name] = { peer, id: u.userId };
  }
});

after(async () => {
  for (const p of Object.values(P)) p.peer.kill();
  await server?.stop();
});

const byId = (id) => (_, m) => m.id === id;
let group;

it('group: join resolves, every member receives (joined or not), reflection, history', async () => {
  const { alice, bob, carol } = P;
  const d = await alice.peer.call('dialogCreate', { type: 2, name: 'Team', occupants_ids: [bob.id, carol.id] });
  group = d._id;

  assert.equal(await alice.peer.call('mucJoin', group), true);
  assert.equal(await bob.peer.call('mucJoin', group), true);
  // Alice sees Bob join.
  assert.deepEqual(await alice.peer.waitFor('joinOccupant', (dlg, u) => u === bob.id), [group, bob.id]);

  const id = await alice.peer.call('send', group, { type: 'groupchat', body: 'hello team', extension: { save_to_history: 1 } });
  // Carol never joined and still receives it.
  for (const who of [carol, bob, alice]) {
    const [from, msg] = await who.peer.waitFor('message', byId(id));
    assert.equal(from, alice.id);
    assert.equal(msg.type, 'groupchat');
    assert.equal(msg.body, 'hello team');
    assert.equal(msg.dialog_id, group);
    assert.ok(Number(msg.extension.date_sent) > 1_600_000_000, 'date_sent stamped');
  }

  const res = await carol.peer.call('messageList', { chat_dialog_id: group, mark_as_read: 0 });
  assert.deepEqual(
    res.items.map((m) => [m._id, m.message, m.sender_id]),
    [[id, 'hello team', alice.id]],
  );
  const unread = await carol.peer.call('unreadCount', { chat_dialog_ids: [group] });
  assert.equal(unread[group], 1, JSON.stringify(unread));

  // The members' SDKs send automatic delivery receipts to the author; a read marker updates history.
  const [, dlg, by] = await alice.peer.waitFor('delivered', (m, _d, u) => m === id && u === carol.id);
  assert.equal(dlg, group);
  await carol.peer.call('read', { messageId: id, dialogId: group, userId: alice.id });
  assert.deepEqual(await alice.peer.waitFor('read', (m) => m === id), [id, group, carol.id]);
  const after = await carol.peer.call('unreadCount', { chat_dialog_ids: [group] });
  assert.equal(after[group], 0, JSON.stringify(after));
  const again = await alice.peer.call('messageList', { chat_dialog_id: group, mark_as_read: 0 });
  assert.ok(again.items[0].read_ids.includes(carol.id), JSON.stringify(again.items[0]));
  assert.ok(again.items[0].delivered_ids.includes(bob.id), JSON.stringify(again.items[0]));
});

it('group: typing, online occupants and leave', async () => {
  const { alice, bob, carol } = P;
  await bob.peer.call('typing', group);
  assert.deepEqual(await alice.peer.waitFor('typing', (_t, u) => u === bob.id), [true, bob.id, group]);
  assert.deepEqual(await carol.peer.waitFor('typing', (_t, u) => u === bob.id), [true, bob.id, group]);
  await bob.peer.call('stopTyping', group);
  assert.deepEqual(await carol.peer.waitFor('typing', (_t, u) => u === bob.id), [false, bob.id, group]);

  const online = await alice.peer.call('mucOnline', group);
  assert.deepEqual([...online].sort((a, b) => a - b), [alice.id, bob.id, carol.id].sort((a, b) => a - b));

  assert.equal(await bob.peer.call('mucLeave', group), true);
  assert.deepEqual(await alice.peer.waitFor('leaveOccupant', (_d, u) => u === bob.id), [group, bob.id]);
});

it('group: a non-member is refused and nothing is stored', async () => {
  const { alice, dave } = P;
  const id = await dave.peer.call('send', group, { type: 'groupchat', body: 'let me in', extension: { save_to_history: 1 } });
  const [mid, err] = await dave.peer.waitFor('messageError', (m) => m === id);
  assert.equal(mid, id);
  assert.equal(err.code, 406);
  const joinErr = await dave.peer.call('mucJoin', group).then(
    () => assert.fail('join must be refused'),
    (e) => e.sdkError,
  );
  assert.equal(joinErr.code, '407');
  assert.equal(joinErr.message, 'Not a member');
  await sleep(200);
  assert.equal(alice.peer.events.filter((e) => e.event === 'message' && e.args[1].id === id).length, 0);
  const res = await alice.peer.call('messageList', { chat_dialog_id: group, mark_as_read: 0 });
  assert.equal(res.items.length, 1);
});

it('group: the owner removes a member, who is kicked and stops receiving', async () => {
  const { alice, bob, carol } = P;
  assert.equal(await bob.peer.call('mucJoin', group), true);
  await alice.peer.call('dialogUpdate', group, { pull_all: { occupants_ids: [bob.id] } });
  assert.deepEqual(await bob.peer.waitFor('kickOccupant'), [group, alice.id]);
  const id = await alice.peer.call('send', group, { type: 'groupchat', body: 'without bob', extension: { save_to_history: 1 } });
  await carol.peer.waitFor('message', byId(id));
  await alice.peer.waitFor('message', byId(id));
  await sleep(300);
  assert.equal(bob.peer.events.filter((e) => e.event === 'message' && e.args[1].id === id).length, 0, 'removed member got it');
  // And Bob can no longer post.
  const bid = await bob.peer.call('send', group, { type: 'groupchat', body: 'hey' });
  assert.equal((await bob.peer.waitFor('messageError', (m) => m === bid))[1].code, 406);
});

it('public dialog: subscribers receive, others are refused', async () => {
  const { alice, bob, carol } = P;
  const d = await alice.peer.call('dialogCreate', { type: 4, name: 'Open' });
  await bob.peer.call('dialogSubscribe', d._id);
  assert.equal(await bob.peer.call('mucJoin', d._id), true);
  const id = await alice.peer.call('send', d._id, { type: 'groupchat', body: 'public hello', extension: { save_to_history: 1 } });
  const [from, msg] = await bob.peer.waitFor('message', byId(id));
  assert.equal(from, alice.id);
  assert.equal(msg.dialog_id, d._id);
  await alice.peer.waitFor('message', byId(id));
  const cid = await carol.peer.call('send', d._id, { type: 'groupchat', body: 'not subscribed' });
  assert.equal((await carol.peer.waitFor('messageError', (m) => m === cid))[1].code, 406);
  await sleep(200);
  assert.equal(carol.peer.events.filter((e) => e.event === 'message' && e.args[1].id === id).length, 0);
  const res = await bob.peer.call('messageList', { chat_dialog_id: d._id, mark_as_read: 0 });
  assert.deepEqual(res.items.map((m) => m._id), [id]);
});

it('broadcast: reaches every connected user, refuses regular users', async () => {
  const { alice, bob, carol, dave } = P;
  const res = await adminFetch(server, server.app.api_key, 'POST', '/admin/chat', {
    body: { type: 1, name: 'News', user_id: alice.id },
  });
  assert.equal(res.status, 200, res.text);
  const b = res.json._id;
  const id = await alice.peer.call('send', b, { type: 'groupchat', body: 'announcement', extension: { save_to_history: 1 } });
  for (const who of [alice, bob, carol, dave]) {
    const [from, msg] = await who.peer.waitFor('message', byId(id));
    assert.equal(from, alice.id);
    assert.equal(msg.dialog_id, b);
  }
  const bid = await bob.peer.call('send', b, { type: 'groupchat', body: 'me too', extension: { save_to_history: 1 } });
  assert.equal((await bob.peer.waitFor('messageError', (m) => m === bid))[1].code, 403);
  await sleep(200);
  assert.equal(carol.peer.events.filter((e) => e.event === 'message' && e.args[1].id === bid).length, 0);
  const list = await dave.peer.call('messageList', { chat_dialog_id: b, mark_as_read: 0 });
  assert.deepEqual(list.items.map((m) => m._id), [id]);
});
