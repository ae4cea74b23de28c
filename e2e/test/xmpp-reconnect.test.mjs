// The SDK reconnects by itself after the server restarts, and chat works again: the session token it
// logs in with, and the users and history, live in the data directory, not in the process.

import { after, it } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, sdkConfig } from '../lib/server.mjs';
import { startPeer } from '../lib/peers.mjs';
import { uniq } from '../lib/util.mjs';

const PASSWORD = 'reconnect-pass-123';
let server;
let alice;
let bob;

after(async () => {
  alice?.kill();
  bob?.kill();
  await server?.stop();
});

it('reconnects after a server restart on the same address and delivers again', async () => {
  server = await startServer();
  const creds = { appId: server.app.id, authKey: server.app.auth_key };
  // A short reconnect interval keeps the test quick; the default is 5 s.
  const config = sdkConfig(server, { chat: { reconnect: { enable: true, timeInterval: 1 } } });
  alice = await startPeer();
  bob = await startPeer();
  await alice.call('init', creds, config);
  await bob.call('init', creds, config);
  const a = await alice.call('signupAndLogin', uniq('alice'), PASSWORD);
  const b = await bob.call('signupAndLogin', uniq('bob'), PASSWORD);
  assert.equal(await alice.call('connect', a.userId, a.token), true);
  assert.equal(await bob.call('connect', b.userId, b.token), true);

  const before = await alice.call('send', b.userId, { type: 'chat', body: 'before', extension: { save_to_history: 1 } });
  await bob.waitFor('message', (_, m) => m.id === before);

  // Restart on the same data and ports.
  const { dataDir, app, httpAddr, xmppAddr } = server;
  await server.stop({ keepData: true });
  await bob.waitFor('disconnected');
  server = await startServer({
    dataDir,
    app,
    env: { CONFAB_HTTP_ADDR: httpAddr, CONFAB_XMPP_ADDR: xmppAddr },
  });
  await alice.waitFor('reconnected');
  await bob.waitFor('reconnected');

  const afterId = await alice.call('send', b.userId, { type: 'chat', body: 'after', extension: { save_to_history: 1 } });
  const [, msg] = await bob.waitFor('message', (_, m) => m.id === afterId);
  assert.equal(msg.body, 'after');
  // History from before the restart is still there.
  const h = await bob.call('listMessages', { chat_dialog_id: msg.dialog_id, mark_as_read: 0 });
  assert.deepEqual(h.items.map((m) => m.message), ['before', 'after']);
});
