// Real time and history together, with the real SDK on both ends: a 1:1 message sent over XMPP with
// save_to_history is in REST history under its stanza id, read markers update it, and REST messages
// with send_to_chat / system messages arrive through the chat listeners.

import { before, after, it } from 'node:test';
import assert from 'node:assert/strict';

import { startServer } from '../lib/server.mjs';
import { startChatUser } from '../lib/peers.mjs';
import { sleep } from '../lib/util.mjs';

const PASSWORD = 'history-pass-123';
let server;
let alice;
let bob;
let aliceId;
let bobId;

before(async () => {
  server = await startServer();
  ({ peer: alice, id: aliceId } = await startChatUser(server, 'alice', PASSWORD));
  ({ peer: bob, id: bobId } = await startChatUser(server, 'bob', PASSWORD));
});

after(async () => {
  alice?.kill();
  bob?.kill();
  await server?.stop();
});

it('a saved 1:1 message is in history with its id, unread, then read through markers', async () => {
  const id = await alice.call('send', bobId, { type: 'chat', body: 'keep me', extension: { save_to_history: 1 } });
  const [, msg] = await bob.waitFor('message', (_, m) => m.id === id);
  assert.match(msg.dialog_id, /^[0-9a-f]{24}$/, 'the server names the private dialog');

  const unread = await bob.call('unreadCount', { chat_dialog_ids: [msg.dialog_id] });
  assert.equal(unread.total, 1);
  const dialogs = await bob.call('listDialogs', {});
  const d = dialogs.items.find((x) => x._id === msg.dialog_id);
  assert.equal(d.last_message, 'keep me');
  assert.equal(d.last_message_id, id);
  assert.equal(d.type, 3);

  // Bob reads it in real time: the marker reaches Alice and the stored message records it.
  await bob.call('read', { messageId: id, userId: aliceId, dialogId: msg.dialog_id });
  const [readId, , reader] = await alice.waitFor('read', (m) => m === id);
  assert.equal(readId, id);
  assert.equal(reader, bobId);
  let stored;
  for (let i = 0; i < 20; i++) {
    const h = await alice.call('listMessages', { chat_dialog_id: msg.dialog_id, mark_as_read: 0 });
    stored = h.items.find((m) => m._id === id);
    if (stored?.read_ids.includes(bobId)) break;
    await sleep(50);
  }
  assert.equal(stored.message, 'keep me');
  assert.equal(stored.sender_id, aliceId);
  assert.ok(stored.read_ids.includes(bobId), JSON.stringify(stored));
  assert.equal((await bob.call('unreadCount', {})).total, 0);
});

it('an unsaved message is delivered but not stored', async () => {
  const id = await alice.call('send', bobId, { type: 'chat', body: 'ephemeral' });
  const [, msg] = await bob.waitFor('message', (_, m) => m.id === id);
  const h = await bob.call('listMessages', { chat_dialog_id: msg.dialog_id, mark_as_read: 0 });
  assert.ok(!h.items.some((m) => m._id === id));
});

it('REST message.create with send_to_chat reaches the recipient live', async () => {
  const created = await alice.call('createMessage', { recipient_id: bobId, message: 'from rest', send_to_chat: 1, mood: 'good' });
  const [from, msg] = await bob.waitFor('message', (_, m) => m.id === created._id);
  assert.equal(from, aliceId);
  assert.equal(msg.body, 'from rest');
  assert.equal(msg.dialog_id, created.chat_dialog_id);
  assert.equal(msg.extension.mood, 'good');
});

it('REST createSystem reaches onSystemMessageListener', async () => {
  const res = await alice.call('createSystem', { recipientId: bobId, param1: 'p1' });
  assert.equal(res.recipientId, bobId);
  const [m] = await bob.waitFor('system', (x) => x.id === res.messageId);
  assert.equal(m.userId, aliceId);
  assert.equal(m.extension.param1, 'p1');
});
