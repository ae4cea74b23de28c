// The SDK's plain-TCP transport (CUBE_TCP_ENABLE set before the module loads, chat_url xmpp://…):
// classic RFC 6120 framing against confab's XMPP TCP listener.

import { before, after, it } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, sdkConfig } from '../lib/server.mjs';
import { startPeer } from '../lib/peers.mjs';
import { uniq } from '../lib/util.mjs';

let server;
let alice;
let bob;
let aliceId;
let bobId;

before(async () => {
  server = await startServer();
  assert.ok(server.xmppUrl, 'server logged `listening xmpp=…`');
  const creds = { appId: server.app.id, authKey: server.app.auth_key };
  const config = sdkConfig(server);
  config.endpoints.chat_url = server.xmppUrl;
  alice = await startPeer({ CUBE_TCP_ENABLE: '1' });
  bob = await startPeer({ CUBE_TCP_ENABLE: '1' });
  await alice.call('init', creds, config);
  await bob.call('init', creds, config);
  const a = await alice.call('signupAndLogin', uniq('alice'), 'tcp-pass-123');
  const b = await bob.call('signupAndLogin', uniq('bob'), 'tcp-pass-123');
  aliceId = a.userId;
  bobId = b.userId;
  // One logs in with the session token, the other with the account password.
  assert.equal(await alice.call('connect', aliceId, a.token), true);
  assert.equal(await bob.call('connect', bobId, 'tcp-pass-123'), true);
});

after(async () => {
  alice?.kill();
  bob?.kill();
  await server?.stop();
});

it('exchanges 1:1 messages over TCP', async () => {
  const id = await alice.call('send', bobId, { type: 'chat', body: 'over tcp', extension: { dialog_id: 'T1', k: 'v' } });
  const [from, msg] = await bob.waitFor('message', (_, m) => m.id === id);
  assert.equal(from, aliceId);
  assert.equal(msg.body, 'over tcp');
  assert.equal(msg.extension.k, 'v');

  const back = await bob.call('send', aliceId, { type: 'chat', body: 'reply' });
  const [rfrom, reply] = await alice.waitFor('message', (_, m) => m.id === back);
  assert.equal(rfrom, bobId);
  assert.equal(reply.body, 'reply');

  await bob.call('typing', aliceId);
  assert.deepEqual(await alice.waitFor('typing'), [true, bobId, null]);
  assert.equal(await alice.call('ping'), true);
});

it('rejects a wrong password with not-authorized', async () => {
  const eve = await startPeer({ CUBE_TCP_ENABLE: '1' });
  try {
    const config = sdkConfig(server, { chat: { reconnect: { enable: false } } });
    config.endpoints.chat_url = server.xmppUrl;
    await eve.call('init', { appId: server.app.id, authKey: server.app.auth_key }, config);
    const err = await eve.call('connect', aliceId, 'wrong').then(
      () => assert.fail('connect resolved'),
      (e) => e.sdkError
    );
    assert.match(JSON.stringify(err), /not-authorized/);
  } finally {
    eve.kill();
  }
});
