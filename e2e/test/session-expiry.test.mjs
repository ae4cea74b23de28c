// Session expiry and the SDK's `on.sessionExpired(handle, retry)` hook.
//
// The SDK calls the hook only when a non-/session request gets HTTP 401 with the body
// {"errors":{"base":["Required session does not exist"]}}. `retry(newSession)` stores the new
// session and replays the original request; `handle()` rejects the original call with the error.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, sdkConfig } from '../lib/server.mjs';
import { loadSdk, uniq, rejection, assertNoSessionError, sleep, NO_SESSION } from '../lib/util.mjs';

const CB = await loadSdk();

const TTL_SECS = 2;
const PASSWORD = 'expiry-pass-123';

let server;
let app;
let user;

/** What the hook does; each test sets it. */
let onExpired = null;
const hookCalls = [];

function init(creds = { appId: app.id, authKey: app.auth_key }) {
  CB.init(
    creds,
    sdkConfig(server, {
      on: {
        sessionExpired: (handle, retry) => {
          hookCalls.push(Date.now());
          if (onExpired) onExpired(handle, retry);
          else handle();
        },
      },
    })
  );
}

/** Hook body: make a new user session and replay the failed request with it. */
function renewAndRetry(handle, retry) {
  CB.createSession({ login: user.login, password: PASSWORD }).then(
    (session) => retry(session),
    (err) => {
      console.error('renewing the session inside sessionExpired failed:', err);
      handle();
    }
  );
}

before(async () => {
  server = await startServer({ sessionTtlSecs: TTL_SECS });
  app = server.app;
  init();
  await CB.createSession();
  const res = await CB.users.signup({ login: uniq('exp'), password: PASSWORD, full_name: 'Expiring' });
  user = res.user;
  assert.ok(user?.id, JSON.stringify(res));
});

after(async () => {
  await server?.stop();
});

describe('9. session expiry', () => {
  it('a session used within its lifetime stays valid (idle timeout is refreshed by use)', async () => {
    init();
    await CB.createSession({ login: user.login, password: PASSWORD });
    hookCalls.length = 0;
    onExpired = null;
    // 4 calls 0.8 s apart: 3.2 s in total, more than the 2 s TTL, but never 2 s idle.
    for (let i = 0; i < 4; i++) {
      await sleep(800);
      const res = await CB.users.getV2({ id: { in: [user.id] } });
      assert.equal(res.items[0]?.id, user.id);
    }
    assert.equal(hookCalls.length, 0, 'no expiry while the session is in use');
  });

  it('an expired session reaches the hook; retry(newSession) replays the call, which then resolves', async () => {
    init();
    const old = await CB.createSession({ login: user.login, password: PASSWORD });
    hookCalls.length = 0;
    onExpired = renewAndRetry;

    await sleep((TTL_SECS + 1) * 1000);

    const res = await CB.users.getV2({ id: { in: [user.id] } });
    assert.equal(hookCalls.length, 1, 'sessionExpired was called once');
    assert.equal(res.total_entries, 1, JSON.stringify(res));
    assert.equal(res.items[0].id, user.id);

    const now = CB.service.getSession();
    assert.notEqual(now.token, old.token, 'the SDK now holds the new session');
    assert.equal(now.user_id, user.id);
  });

  it('the expired token itself is answered 401 {"errors":{"base":["Required session does not exist"]}}', async () => {
    init();
    await CB.createSession({ login: user.login, password: PASSWORD });
    hookCalls.length = 0;
    onExpired = (handle) => handle(); // give up: the original call rejects with the server's error

    await sleep((TTL_SECS + 1) * 1000);

    const err = await rejection(CB.users.getV2({ id: { in: [user.id] } }), 'call with expired token');
    assert.equal(hookCalls.length, 1);
    assertNoSessionError(err, 'expired token');
    assert.deepEqual(err.info.errors.base, [NO_SESSION]);
  });

  it('an unknown token (init with {appId, token}) reaches the hook, and retry works', async () => {
    init({ appId: app.id, token: 'deadbeef'.repeat(5) });
    hookCalls.length = 0;
    onExpired = renewAndRetry;

    const res = await CB.users.getV2({ login: user.login });
    assert.equal(hookCalls.length, 1, 'sessionExpired was called once');
    assert.equal(res.total_entries, 1, JSON.stringify(res));
    assert.equal(res.items[0].id, user.id);
    assert.notEqual(CB.service.getSession().token, 'deadbeef'.repeat(5));
  });

  it('an expired app session reaches the hook too', async () => {
    init();
    await CB.createSession();
    hookCalls.length = 0;
    onExpired = renewAndRetry;

    await sleep((TTL_SECS + 1) * 1000);

    const res = await CB.users.getV2({ login: user.login });
    assert.equal(hookCalls.length, 1);
    assert.equal(res.items[0]?.id, user.id);
  });
});
