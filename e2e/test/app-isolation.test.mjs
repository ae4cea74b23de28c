// Two applications on one server: nothing crosses from one to the other.
// App B is created with `confab app create` against the data dir of the RUNNING server, and the
// server must accept it at once.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, sdkConfig } from '../lib/server.mjs';
import { loadSdk, uniq, rejection, assertApiError } from '../lib/util.mjs';

const CB = await loadSdk();

const PASSWORD = 'isolation-pass-1';

let server;
let appA;
let appB;
const A = {};
const B = {};

function initApp(app) {
  CB.init({ appId: app.id, authKey: app.auth_key }, sdkConfig(server));
}

async function signupIn(app, login) {
  initApp(app);
  await CB.createSession();
  const res = await CB.users.signup({ login, password: PASSWORD, full_name: `user of ${app.id}` });
  assert.ok(res.user?.id, JSON.stringify(res));
  return res.user;
}

before(async () => {
  server = await startServer({ appName: 'app-a' });
  appA = server.app;
});

after(async () => {
  await server?.stop();
});

describe('11. application isolation', () => {
  it('`confab app create` works while the server runs, and the server accepts the new app at once', async () => {
    appB = await server.createApp('app-b');
    assert.equal(typeof appB.id, 'number');
    assert.notEqual(appB.id, appA.id);
    assert.notEqual(appB.auth_key, appA.auth_key);
    initApp(appB);
    const s = await CB.createSession();
    assert.equal(Number(s.application_id), appB.id);
  });

  it('the same login can exist in both apps as different users', async () => {
    const login = uniq('twin');
    A.user = await signupIn(appA, login);
    B.user = await signupIn(appB, login);
    assert.equal(A.user.login, login);
    assert.equal(B.user.login, login);
    assert.notEqual(A.user.id, B.user.id);

    initApp(appA);
    A.session = await CB.createSession({ login, password: PASSWORD });
    assert.equal(A.session.user_id, A.user.id);
    initApp(appB);
    B.session = await CB.createSession({ login, password: PASSWORD });
    assert.equal(B.session.user_id, B.user.id);
  });

  it("a user of app A is not visible from app B's session", async () => {
    initApp(appB);
    CB.setSession(B.session);
    const byId = await CB.users.getV2({ id: { in: [A.user.id] } });
    assert.equal(byId.total_entries, 0, JSON.stringify(byId));
    assert.deepEqual(byId.items, []);

    const both = await CB.users.getV2({ id: { in: [A.user.id, B.user.id] } });
    assert.deepEqual(both.items.map((u) => u.id), [B.user.id], 'only app B’s own user');

    const byLogin = await CB.users.getV2({ login: A.user.login });
    assert.deepEqual(byLogin.items.map((u) => u.id), [B.user.id], 'the login resolves to app B’s user');
  });

  it('GET /users/<id of app A user> from app B is 404 (same-app lookup is 200)', async () => {
    initApp(appB);
    CB.setSession(B.session);
    const own = await CB.users.get(B.user.id); // deprecated SDK call: GET /users/<id>.json
    assert.equal(own.user?.id, B.user.id, JSON.stringify(own));
    const err = await rejection(CB.users.get(A.user.id), 'GET /users/<foreign id>');
    assert.equal(err.code, 404, JSON.stringify(err));
  });

  it("app A's token used with app B's id still only sees app A", async () => {
    CB.init({ appId: appB.id, token: A.session.token }, sdkConfig(server));
    const res = await CB.users.getV2({ id: { in: [A.user.id, B.user.id] } });
    assert.deepEqual(res.items.map((u) => u.id), [A.user.id], JSON.stringify(res));
    const s = await CB.getSession();
    assert.equal(Number(s.application_id), appA.id, 'the token decides the app');
  });

  it("app A's auth key does not open a session for app B's id", async () => {
    CB.init({ appId: appB.id, authKey: appA.auth_key }, sdkConfig(server));
    const err = await rejection(CB.createSession(), 'createSession(appB.id, appA.auth_key)');
    assertApiError(err, [401, 403, 422], 'foreign auth key');
  });

  it("app A's user cannot sign in through app B", async () => {
    const onlyA = await signupIn(appA, uniq('onlya'));
    initApp(appB);
    const err = await rejection(CB.createSession({ login: onlyA.login, password: PASSWORD }), 'sign in via app B');
    assertApiError(err, [401, 422], 'sign in via other app');
  });

  it("app B's session cannot update or delete app A's user", async () => {
    initApp(appB);
    CB.setSession(B.session);
    CB.service.setCurrentUserId(A.user.id);
    const errU = await rejection(CB.users.update({ full_name: 'cross-app' }), 'cross-app update');
    assert.ok([403, 404].includes(errU.code), JSON.stringify(errU));
    const errD = await rejection(CB.users.delete(), 'cross-app delete');
    assert.ok([403, 404].includes(errD.code), JSON.stringify(errD));

    initApp(appA);
    CB.setSession(A.session);
    const still = await CB.users.getV2({ id: { in: [A.user.id] } });
    assert.equal(still.items[0]?.full_name, `user of ${appA.id}`, 'app A’s user is untouched');
  });
});
