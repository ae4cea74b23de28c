// Real-time 1:1 chat with the real SDK on both ends (two processes), over WebSocket, or over TCP with
// XMPP_TRANSPORT=tcp (npm test runs the chat files both ways).

import { before, after, it } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, sdkConfig } from '../lib/server.mjs';
import { startPeer } from '../lib/peers.mjs';
import { uniq, sleep } from '../lib/util.mjs';

const PASSWORD = 'chat-pass-123';
let server;
let alice;
let bob;
let aliceId;
let aliceToken;
let bobId;
let bobToken;

before(async () => {
  server = await startServer();
  const creds = { appId: server.app.id, authKey: server.app.auth_key };
  alice = await startPeer();
  bob = await startPeer();
  // Alice asks for XEP-0198 acks so onSentMessageCallback fires.
  await alice.call('init', creds, sdkConfig(server, { chat: { streamManagement: { enable: true } } }));
  await bob.call('init', creds, sdkConfig(server));
  const a = await alice.call('signupAndLogin', uniq('alice'), PASSWORD);
  const b = await bob.call('signupAndLogin', uniq('bob'), PASSWORD);
  aliceId = a.userId;
  aliceToken = a.token;
  bobId = b.userId;
  bobToken = b.token;
  assert.equal(await alice.call('connect', aliceId, a.token), true);
  assert.equal(await bob.call('connect', bobId, bobToken), true);
});

after(async () => {
  alice?.kill();
  bob?.kill();
  await server?.stop();
});

it('delivers a 1:1 message with its extension, acks it and reports delivery', async () => {
  const id = await alice.call('send', bobId, {
    type: 'chat',
    body: 'Hello & <bob>',
    extension: { save_to_history: 1, dialog_id: 'DLG1', custom: 'v', nested: { a: 1 }, tags: ['x', 'y'] },
  });
  const [from, msg] = await bob.waitFor('message', (_, m) => m.id === id);
  assert.equal(from, aliceId);
  assert.equal(msg.body, 'Hello & <bob>');
  assert.equal(msg.type, 'chat');
  assert.equal(msg.dialog_id, 'DLG1');
  assert.equal(msg.extension.custom, 'v');
  assert.equal(msg.extension.save_to_history, '1');
  assert.deepEqual(msg.extension.nested, { a: '1' });
  assert.ok(Number(msg.extension.date_sent) > 1_600_000_000, 'date_sent stamped');
  assert.equal(msg.recipient_id, bobId);
  // Stream management: the server acked the message.
  const [lost, sent] = await alice.waitFor('sent');
  assert.equal(lost, null);
  assert.equal(sent.id, id);
  // Bob's SDK sends an automatic delivery marker (the message has a dialog_id).
  const [mid, dialogId, by] = await alice.waitFor('delivered', (m) => m === id);
  assert.equal(mid, id);
  assert.equal(dialogId, 'DLG1');
  assert.equal(by, bobId);

  await bob.call('read', { messageId: id, dialogId: 'DLG1', userId: aliceId });
  const [rid, , rby] = await alice.waitFor('read');
  assert.equal(rid, id);
  assert.equal(rby, bobId);
});

it('forwards typing, edits and deletes', async () => {
  await alice.call('typing', bobId);
  assert.deepEqual(await bob.waitFor('typing'), [true, aliceId, null]);
  await alice.call('stopTyping', bobId);
  assert.deepEqual(await bob.waitFor('typing'), [false, aliceId, null]);

  await alice.call('edit', { to: bobId, dialogId: 'DLG1', body: 'edited', originMessageId: '5f1c2d3e4b5a697887000000', last: true });
  const [eid, isLast, body, , euser] = await bob.waitFor('update');
  assert.equal(eid, '5f1c2d3e4b5a697887000000');
  assert.equal(isLast, true);
  assert.equal(body, 'edited');
  assert.equal(euser, aliceId);

  await alice.call('remove', { to: bobId, dialogId: 'DLG1', messageId: '5f1c2d3e4b5a697887000000' });
  const [did, , duser] = await bob.waitFor('delete');
  assert.equal(did, '5f1c2d3e4b5a697887000000');
  assert.equal(duser, aliceId);
});

it('delivers system messages with the sender stamped', async () => {
  await alice.call('sendSystemMessage', bobId, { body: 'sys', extension: { param1: 'a' } });
  const [m] = await bob.waitFor('system');
  assert.equal(m.userId, aliceId);
  assert.equal(m.body, 'sys');
  assert.equal(m.extension.param1, 'a');
});

it('answers ping and last activity', async () => {
  assert.equal(await alice.call('ping'), true);
  const act = await alice.call('lastActivity', bobId);
  assert.equal(act.userId, bobId);
  assert.equal(act.seconds, 0);
  await alice.call('markInactive');
  await alice.call('markActive');
  assert.equal(await alice.call('ping'), true);
});

it('keeps messages for an offline user and hands them over at the next login', async () => {
  await bob.call('disconnect');
  await sleep(300);
  const act = await alice.call('lastActivity', bobId);
  assert.equal(act.userId, bobId);
  assert.ok(act.seconds >= 0 && act.seconds < 30, JSON.stringify(act));

  const id = await alice.call('send', bobId, { type: 'chat', body: 'while you were away', extension: { dialog_id: 'DLG1' } });
  await alice.waitFor('sent', (lost, sent) => sent?.id === id);
  // Status streaming: alice hears when bob comes back.
  for (const e of alice.unconsumed('lastActivity')) e.used = true;
  await alice.call('subscribeStatus', bobId);
  await alice.call('ping');
  assert.equal(await bob.call('connect', bobId, bobToken), true);
  assert.deepEqual(await alice.waitFor('lastActivity'), [bobId, 0]);
  const [from, msg] = await bob.waitFor('message', (_, m) => m.id === id);
  assert.equal(from, aliceId);
  assert.equal(msg.body, 'while you were away');
  assert.ok(msg.delay?.attrs?.stamp, 'XEP-0203 delay with a stamp');
});

it('hands offline messages to an acking (XEP-0198) client until it acknowledged them', async () => {
  await alice.call('disconnect');
  await sleep(300);
  const id = await bob.call('send', aliceId, { type: 'chat', body: 'kept until acked', extension: { dialog_id: 'DLG1' } });
  assert.equal(await bob.call('ping'), true);
  assert.equal(await alice.call('connect', aliceId, aliceToken), true);
  const [, msg] = await alice.waitFor('message', (_, m) => m.id === id);
  assert.ok(msg.delay?.attrs?.stamp, 'XEP-0203 delay with a stamp');
  // The SDK answers the server's <r/> before this round trip ends: the message is confirmed.
  assert.equal(await alice.call('ping'), true);
  await alice.call('disconnect');
  await sleep(300);
  assert.equal(await alice.call('connect', aliceId, aliceToken), true);
  assert.equal(await alice.call('ping'), true);
  const again = alice.unconsumed('message').filter((e) => e.args[1]?.id === id);
  assert.equal(again.length, 0, 'not handed out again after the ack');
});

it('reports a message error for an unknown recipient', async () => {
  const id = await alice.call('send', 987654321, { type: 'chat', body: 'nobody' });
  const [eid, err] = await alice.waitFor('messageError');
  assert.equal(eid, id);
  assert.equal(err.code, 503);
});
