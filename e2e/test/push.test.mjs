// Push through the real connectycube@6.1.2 SDK: pushnotifications.subscriptions create/list/delete,
// events.create, and chat alerts for an offline and a background (markInactive) recipient, as the
// operator's webhook receives them (signed with HMAC-SHA256).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHmac } from 'node:crypto';

import { startServer } from '../lib/server.mjs';
import { startChatUser } from '../lib/peers.mjs';

const SECRET = 'e2e-webhook-secret';
const PASSWORD = 'push-e2e-pass-1';

let server;
let hook;
let received = [];
let waiters = [];
let alice;
let bob;

/** The operator's webhook: checks the signature, keeps the body. */
function startHook() {
  return new Promise((resolve) => {
    const srv = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const expected = 'sha256=' + createHmac('sha256', SECRET).update(body).digest('hex');
        if (req.headers['x-confab-signature'] !== expected) {
          res.writeHead(401).end();
          received.push({ badSignature: true });
          return;
        }
        received.push(JSON.parse(body.toString()));
        for (const w of [...waiters]) w();
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

/** The first webhook body not seen yet that matches `pred`, within `ms`. */
function nextHook(pred, ms = 2000) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const i = received.findIndex((b) => !b.used && pred(b));
      if (i === -1) return false;
      received[i].used = true;
      waiters = waiters.filter((w) => w !== check);
      clearTimeout(timer);
      resolve(received[i]);
      return true;
    };
    const timer = setTimeout(() => {
      waiters = waiters.filter((w) => w !== check);
      reject(new Error(`no webhook call within ${ms} ms; got ${JSON.stringify(received)}`));
    }, ms);
    if (!check()) waiters.push(check);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  hook = await startHook();
  server = await startServer({
    env: {
      CONFAB_PUSH_WEBHOOK_URL: `http://127.0.0.1:${hook.address().port}/hook`,
      CONFAB_PUSH_WEBHOOK_SECRET: SECRET,
      CONFAB_PUSH_ALLOW_PRIVATE_ENDPOINTS: '1',
    },
  });
  alice = await startChatUser(server, 'alice', PASSWORD);
  bob = await startChatUser(server, 'bob', PASSWORD);
});

after(async () => {
  alice?.peer.kill();
  bob?.peer.kill();
  await server?.stop();
  hook?.close();
});

describe('push notifications', () => {
  let subId;

  it('subscriptions.create answers an array; a new token for the device replaces the old one', async () => {
    const params = (token) => ({
      notification_channel: 'gcm',
      push_token: { environment: 'development', client_identification_sequence: token },
      device: { platform: 'android', udid: 'bob-phone' },
    });
    const created = await bob.peer.call('pushSubscribe', params('token-1'));
    assert.ok(Array.isArray(created), JSON.stringify(created));
    const sub = created[0].subscription;
    assert.equal(sub.notification_channel.name, 'gcm');
    assert.equal(sub.device.udid, 'bob-phone');
    assert.equal(sub.device.platform.name, 'android');
    subId = sub.id;
    const again = await bob.peer.call('pushSubscribe', params('token-2'));
    assert.equal(again[0].subscription.id, subId);
    const list = await bob.peer.call('pushList');
    assert.equal(list.length, 1, JSON.stringify(list));
  });

  it('web subscriptions are checked, listed and deleted; bad ones are refused', async () => {
    const web = await bob.peer.call('pushSubscribe', {
      notification_channel: 'web',
      push_token: {
        environment: 'production',
        web_endpoint: 'http://127.0.0.1:9/push/abc',
        web_auth: Buffer.alloc(16, 1).toString('base64url'),
        web_p256dh: Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 7)]).toString('base64url'),
      },
      device: { platform: 'web', udid: 'bob-browser' },
    });
    assert.equal(web[0].subscription.notification_channel.name, 'web');
    assert.equal((await bob.peer.call('pushList')).length, 2);
    await assert.rejects(
      bob.peer.call('pushSubscribe', {
        notification_channel: 'sms',
        push_token: { environment: 'development', client_identification_sequence: 't' },
        device: { platform: 'android', udid: 'x' },
      }),
      (err) => err.code === 422 || /422|notification_channel/.test(JSON.stringify(err)),
    );
    // Alice cannot delete bob's subscription.
    await assert.rejects(alice.peer.call('pushDelete', web[0].subscription.id));
    assert.equal(await bob.peer.call('pushDelete', web[0].subscription.id), true);
    const list = await bob.peer.call('pushList');
    assert.deepEqual(list.map((s) => s.subscription.id), [subId]);
  });

  it('events.create reaches the addressed users', async () => {
    const message = await alice.peer.call('base64', JSON.stringify({ message: 'Match at 8', room: 'r1' }));
    const events = await alice.peer.call('pushEvent', {
      notification_type: 'push',
      environment: 'development',
      message,
      user: { ids: String(bob.id) },
    });
    assert.ok(Array.isArray(events), JSON.stringify(events));
    const id = events[0].event.id;
    assert.ok(Number.isInteger(id));
    const body = await nextHook((b) => b.type === 'event' && b.event_id === id);
    assert.equal(body.user_id, bob.id);
    assert.equal(body.message, 'Match at 8');
    assert.equal(body.payload, message);
    assert.ok(!received.some((b) => b.badSignature));
  });

  it('an offline recipient gets a chat alert within 2 s; a silent message makes none', async () => {
    await bob.peer.call('disconnect');
    await sleep(300);
    const started = Date.now();
    await alice.peer.call('send', bob.id, { type: 'chat', body: 'dinner at 7?', extension: { save_to_history: 1 } });
    const alert = await nextHook((b) => b.type === 'chat_alert' && b.user_id === bob.id);
    assert.ok(Date.now() - started < 2000);
    assert.equal(alert.sender_id, alice.id);
    assert.match(alert.message, /dinner at 7\?/);
    assert.match(alert.dialog_id, /^[0-9a-f]{24}$/);

    await alice.peer.call('send', bob.id, { type: 'chat', body: 'shh', extension: { silent: 1 } });
    await sleep(700);
    assert.ok(!received.some((b) => !b.used && b.type === 'chat_alert'), JSON.stringify(received));
  });

  it('a recipient in the background (markInactive) gets alerts; an active one does not', async () => {
    assert.equal(await bob.peer.call('connect', bob.id, bob.token), true);
    await sleep(300);
    await alice.peer.call('send', bob.id, { type: 'chat', body: 'you are online' });
    await bob.peer.waitFor('message', (from, m) => m?.body === 'you are online');
    await sleep(500);
    assert.ok(!received.some((b) => !b.used && b.type === 'chat_alert'), JSON.stringify(received));

    await bob.peer.call('markInactive');
    await sleep(200);
    await alice.peer.call('send', bob.id, { type: 'chat', body: 'in your pocket' });
    const alert = await nextHook((b) => b.type === 'chat_alert' && /in your pocket/.test(b.message));
    assert.equal(alert.user_id, bob.id);
    await bob.peer.call('markActive');
  });
});
