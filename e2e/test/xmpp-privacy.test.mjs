// Privacy lists (XEP-0016) with the real SDK: `chat.privacylist.create` / `setAsDefault`, then a
// blocked user's 1:1 message is refused with an error (onMessageErrorListener) and never reaches the
// blocker; a one-way block still lets the blocker write, a mutual block does not (seed 002).

import { before, after, it } from 'node:test';
import assert from 'node:assert/strict';

import { startServer } from '../lib/server.mjs';
import { startChatUser } from '../lib/peers.mjs';
import { sleep } from '../lib/util.mjs';

const PASSWORD = 'privacy-pass-123';
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

function received(peer, id) {
  return peer.events.some((e) => e.event === 'message' && e.args[1]?.id === id);
}

it('a one-way block refuses the blocked sender and lets the blocker write', async () => {
  assert.equal(
    await alice.call('privacyCreate', { name: 'oneway', items: [{ user_id: bobId, action: 'deny' }] }),
    true
  );
  const list = await alice.call('privacyGetList', 'oneway');
  assert.deepEqual(list, { name: 'oneway', items: [{ user_id: bobId, action: 'deny' }] });

  // Not yet the default: not enforced.
  const before = await bob.call('send', aliceId, { type: 'chat', body: 'before' });
  await alice.waitFor('message', (_, m) => m.id === before);

  assert.equal(await alice.call('privacySetDefault', 'oneway'), true);
  const names = await alice.call('privacyGetNames');
  assert.equal(names.default, 'oneway');
  assert.ok(names.names.includes('oneway'));

  const blocked = await bob.call('send', aliceId, { type: 'chat', body: 'blocked' });
  const [eid, err] = await bob.waitFor('messageError', (id) => id === blocked);
  assert.equal(eid, blocked);
  assert.equal(err.code, 503);
  await sleep(500);
  assert.equal(received(alice, blocked), false, 'the blocker must not receive the message');

  // One way: alice can still write to bob.
  const out = await alice.call('send', bobId, { type: 'chat', body: 'still allowed' });
  const [from] = await bob.waitFor('message', (_, m) => m.id === out);
  assert.equal(from, aliceId);
});

it('a mutual block also stops the blocker, and declining the default lifts it', async () => {
  assert.equal(
    await alice.call('privacyCreate', {
      name: 'mutual',
      items: [{ user_id: bobId, action: 'deny', mutualBlock: true }],
    }),
    true
  );
  assert.equal(await alice.call('privacySetDefault', 'mutual'), true);

  const out = await alice.call('send', bobId, { type: 'chat', body: 'through a mutual block' });
  const [eid, err] = await alice.waitFor('messageError', (id) => id === out);
  assert.equal(eid, out);
  assert.equal(err.code, 406);
  const inbound = await bob.call('send', aliceId, { type: 'chat', body: 'blocked too' });
  const [, err2] = await bob.waitFor('messageError', (id) => id === inbound);
  assert.equal(err2.code, 503);
  await sleep(500);
  assert.equal(received(bob, out), false);
  assert.equal(received(alice, inbound), false);

  // Decline the default list: messages flow again; the lists can then be deleted.
  assert.equal(await alice.call('privacySetDefault', null), true);
  const again = await bob.call('send', aliceId, { type: 'chat', body: 'unblocked' });
  await alice.waitFor('message', (_, m) => m.id === again);
  assert.equal(await alice.call('privacyDelete', 'mutual'), true);
  const names = await alice.call('privacyGetNames');
  assert.ok(!names.default, 'no default list after declining');
  assert.deepEqual(names.names, ['oneway']);
});
