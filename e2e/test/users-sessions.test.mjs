// Sessions and users, driven through the real connectycube@6.1.2 SDK against a real confab server.
//
// The SDK's config and session are process-wide singletons, so this file starts ONE server and
// runs its steps in order. Each step that needs a particular SDK state sets it up itself with
// `fresh()` (a new init: no token, no current user), so one failing step does not cascade.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, sdkConfig } from '../lib/server.mjs';
import {
  loadSdk,
  uniq,
  rejection,
  assertApiError,
  assertNoSessionError,
  tagsOf,
  rawFetch,
} from '../lib/util.mjs';

const CB = await loadSdk();

const PASSWORD = 'correct-horse-1';

let server;
let app;

/** Re-inits the SDK: no session token, no current user. */
function fresh() {
  CB.init({ appId: app.id, authKey: app.auth_key }, sdkConfig(server));
}

/** Signs a user up under a fresh app session and returns the created user. */
async function signup(fields = {}) {
  fresh();
  await CB.createSession();
  const login = fields.login ?? uniq('user');
  const res = await CB.users.signup({ login, password: PASSWORD, ...fields });
  assert.ok(res && res.user && typeof res.user.id === 'number', `signup response: ${JSON.stringify(res)}`);
  return res.user;
}

/** Leaves the SDK holding a user session for `login`. */
async function userSession(login, password = PASSWORD) {
  fresh();
  return CB.createSession({ login, password });
}

before(async () => {
  server = await startServer();
  app = server.app;
  fresh();
});

after(async () => {
  await server?.stop();
});

describe('server', () => {
  it('answers GET /health with 200', async () => {
    const res = await fetch(`${server.url}/health`);
    assert.equal(res.status, 200);
  });

  it('`confab app create` printed the app credentials as one JSON object', () => {
    assert.equal(typeof app.id, 'number');
    assert.ok(app.id > 0);
    for (const k of ['auth_key', 'auth_secret', 'api_key']) {
      assert.equal(typeof app[k], 'string', k);
      assert.ok(app[k].length >= 8, `${k} looks too short: ${app[k]}`);
    }
  });
});

describe('1. application session', () => {
  it('createSession() returns an app session with a token and no user', async () => {
    fresh();
    const s = await CB.createSession();
    assert.equal(typeof s.token, 'string');
    assert.ok(s.token.length >= 16, `token too short: ${s.token}`);
    assert.equal(Number(s.application_id), app.id, `application_id: ${JSON.stringify(s)}`);
    assert.ok(!s.user_id, `an app session has no user_id (0/null/absent), got ${s.user_id}`);
    assert.ok(s.user == null, `an app session has no user, got ${JSON.stringify(s.user)}`);
    assert.equal(typeof s.id, 'number', 'session.id');
    // The SDK stored it and will send it as CB-Token.
    assert.equal(CB.service.getSession().token, s.token);
    assert.equal(CB.service.getCurrentUserId(), undefined);
  });

  it('each createSession() issues a new token', async () => {
    fresh();
    const a = await CB.createSession();
    const b = await CB.createSession(); // sent WITH CB-Token of `a`: the server must not mind
    assert.notEqual(a.token, b.token);
  });

  it('createSession() with a wrong auth key is rejected', async () => {
    CB.init({ appId: app.id, authKey: 'not-the-auth-key' }, sdkConfig(server));
    const err = await rejection(CB.createSession(), 'createSession with wrong auth key');
    assertApiError(err, [401, 403, 422], 'wrong auth key');
  });

  it('createSession() with an unknown application id is rejected', async () => {
    CB.init({ appId: app.id + 1000, authKey: app.auth_key }, sdkConfig(server));
    const err = await rejection(CB.createSession(), 'createSession with unknown app id');
    assertApiError(err, [401, 403, 404, 422], 'unknown app id');
  });
});

describe('2. users.signup', () => {
  it('creates a user with the given fields and never returns the password', async () => {
    const login = uniq('signup');
    const email = `${login}@example.com`;
    fresh();
    await CB.createSession();
    const res = await CB.users.signup({
      login,
      password: PASSWORD,
      email,
      full_name: 'Sign Up',
      custom_data: '{"color":"blue"}',
      tag_list: ['red', 'green'],
    });
    assert.ok(res.user, `response must be {user: User}, got ${JSON.stringify(res)}`);
    const u = res.user;
    assert.equal(typeof u.id, 'number');
    assert.ok(u.id > 0);
    assert.equal(u.login, login);
    assert.equal(u.email, email);
    assert.equal(u.full_name, 'Sign Up');
    assert.equal(u.custom_data, '{"color":"blue"}');
    assert.deepEqual(tagsOf(u), ['green', 'red'], `user_tags: ${JSON.stringify(u.user_tags)}`);
    assert.ok(u.created_at != null, 'created_at');
    assert.ok(u.updated_at != null, 'updated_at');
    for (const k of ['password', 'old_password', 'password_hash', 'encrypted_password']) {
      assert.ok(!(k in u), `user must not have "${k}"`);
    }
    assert.ok(!JSON.stringify(res).includes(PASSWORD), 'the password must not appear anywhere in the response');
  });

  it('rejects a duplicate login with 422 {errors:{login:["has already been taken"]}}', async () => {
    const u = await signup();
    const err = await rejection(
      CB.users.signup({ login: u.login, password: PASSWORD }),
      'duplicate signup'
    );
    assert.equal(err.code, 422, JSON.stringify(err));
    assert.deepEqual(err.info, { errors: { login: ['has already been taken'] } });
  });

  it('rejects a too short password with 422 and a password error', async () => {
    fresh();
    await CB.createSession();
    const err = await rejection(CB.users.signup({ login: uniq('short'), password: 'x' }), 'short password');
    assertApiError(err, 422, 'short password');
    assert.ok(err.info.errors.password, `expected errors.password, got ${JSON.stringify(err.info)}`);
  });

  it('works without a session, with the CB-AuthKey header the SDK then sends', async () => {
    fresh(); // no token held: the SDK adds `CB-AuthKey: <authKey>` to POST /users.json
    const login = uniq('nosess');
    const res = await CB.users.signup({ login, password: PASSWORD });
    assert.equal(res.user?.login, login, JSON.stringify(res));
  });
});

describe('3. user session', () => {
  let user;
  before(async () => {
    user = await signup({ email: `${uniq('mail')}@example.com` });
  });

  it('createSession({login, password}) returns a session of that user', async () => {
    const s = await userSession(user.login);
    assert.equal(s.user_id, user.id);
    assert.equal(typeof s.token, 'string');
    assert.ok(s.token.length >= 16);
    assert.equal(Number(s.application_id), app.id);
    if (s.user != null) assert.equal(s.user.id, user.id, 'session.user, when present, is the user');
    assert.equal(CB.service.getCurrentUserId(), user.id);
  });

  it('createSession({email, password}) works as well', async () => {
    fresh();
    const s = await CB.createSession({ email: user.email, password: PASSWORD });
    assert.equal(s.user_id, user.id);
  });

  it('a wrong password is rejected with 401 (or 422) and an errors body', async () => {
    fresh();
    const err = await rejection(CB.createSession({ login: user.login, password: 'wrong-password-1' }));
    assertApiError(err, [401, 422], 'wrong password');
  });

  it('an unknown login is rejected the same way', async () => {
    fresh();
    const err = await rejection(CB.createSession({ login: uniq('nobody'), password: PASSWORD }));
    assertApiError(err, [401, 422], 'unknown login');
  });

  it('4. getSession() returns the same token and user', async () => {
    const s = await userSession(user.login);
    const got = await CB.getSession();
    assert.equal(got.token, s.token);
    assert.equal(got.user_id, user.id);
    assert.equal(Number(got.application_id), app.id);
    assert.equal(got.id, s.id);
  });

  it('getSession() on an app session has no user', async () => {
    fresh();
    const s = await CB.createSession();
    const got = await CB.getSession();
    assert.equal(got.token, s.token);
    assert.ok(!got.user_id, `user_id: ${got.user_id}`);
  });
});

describe('5. users.getV2', () => {
  const users = [];
  let ids;
  before(async () => {
    const tag = uniq('grp');
    for (let i = 0; i < 4; i++) users.push(await signup({ login: `${tag}n${i}`, full_name: `Member ${i}` }));
    ids = users.map((u) => u.id);
    await userSession(users[0].login);
  });

  it('finds users by id[in] and returns {limit, skip, total_entries, items:[User]}', async () => {
    const want = ids.slice(0, 3);
    const res = await CB.users.getV2({ id: { in: want } });
    assert.equal(res.total_entries, 3, JSON.stringify(res));
    assert.equal(typeof res.limit, 'number', 'limit');
    assert.equal(res.skip, 0, 'skip');
    assert.ok(Array.isArray(res.items));
    // The SDK types (GetV2Response) say `items: User[]`: bare users, not {user: User}.
    for (const item of res.items) {
      assert.equal(typeof item.id, 'number', `items must be bare users, got ${JSON.stringify(item)}`);
      assert.ok(!('user' in item), 'items must not be wrapped in {user: …}');
    }
    assert.deepEqual(res.items.map((u) => u.id).sort((a, b) => a - b), [...want].sort((a, b) => a - b));
    const first = res.items.find((u) => u.id === users[0].id);
    assert.equal(first.login, users[0].login);
    assert.equal(first.full_name, 'Member 0');
  });

  it('finds a user by exact login', async () => {
    const res = await CB.users.getV2({ login: users[2].login });
    assert.equal(res.total_entries, 1, JSON.stringify(res));
    assert.equal(res.items.length, 1);
    assert.equal(res.items[0].id, users[2].id);
    assert.equal(res.items[0].login, users[2].login);
  });

  it('finds users by login[in]', async () => {
    const res = await CB.users.getV2({ login: { in: [users[1].login, users[3].login] } });
    assert.equal(res.total_entries, 2, JSON.stringify(res));
    assert.deepEqual(res.items.map((u) => u.login).sort(), [users[1].login, users[3].login].sort());
  });

  it('returns an empty page for a login nobody has', async () => {
    const res = await CB.users.getV2({ login: uniq('ghost') });
    assert.equal(res.total_entries, 0, JSON.stringify(res));
    assert.deepEqual(res.items, []);
  });

  it('pages with limit and offset (the SDK type GetV2Params names it `offset`)', async () => {
    const p1 = await CB.users.getV2({ id: { in: ids }, limit: 2 });
    assert.equal(p1.limit, 2, JSON.stringify(p1));
    assert.equal(p1.skip, 0);
    assert.equal(p1.total_entries, 4);
    assert.equal(p1.items.length, 2);
    const p2 = await CB.users.getV2({ id: { in: ids }, limit: 2, offset: 2 });
    assert.equal(p2.limit, 2, JSON.stringify(p2));
    assert.equal(p2.skip, 2, 'the response reports the offset as `skip`');
    assert.equal(p2.total_entries, 4);
    assert.equal(p2.items.length, 2);
    const seen = [...p1.items, ...p2.items].map((u) => u.id).sort((a, b) => a - b);
    assert.deepEqual(seen, [...ids].sort((a, b) => a - b), 'two pages cover all four users once');
    const p3 = await CB.users.getV2({ id: { in: ids }, limit: 2, offset: 4 });
    assert.equal(p3.total_entries, 4);
    assert.deepEqual(p3.items, []);
  });

  it('pages with limit and skip', async () => {
    const p1 = await CB.users.getV2({ id: { in: ids }, limit: 3, skip: 0 });
    const p2 = await CB.users.getV2({ id: { in: ids }, limit: 3, skip: 3 });
    assert.equal(p1.items.length, 3, JSON.stringify(p1));
    assert.equal(p2.items.length, 1, JSON.stringify(p2));
    assert.equal(p2.skip, 3);
    assert.equal(p2.total_entries, 4);
    const seen = [...p1.items, ...p2.items].map((u) => u.id).sort((a, b) => a - b);
    assert.deepEqual(seen, [...ids].sort((a, b) => a - b));
  });

  it('never returns passwords in list items', async () => {
    const res = await CB.users.getV2({ id: { in: ids } });
    assert.ok(!JSON.stringify(res).includes(PASSWORD));
    for (const u of res.items) assert.ok(!('password' in u));
  });
});

describe('6. users.update', () => {
  let user;
  before(async () => {
    user = await signup({ full_name: 'Old Name' });
  });

  it('updates the current user', async () => {
    await userSession(user.login);
    const res = await CB.users.update({ full_name: 'New', custom_data: 'cd' });
    assert.equal(res.user?.id, user.id, JSON.stringify(res));
    assert.equal(res.user.full_name, 'New');
    assert.equal(res.user.custom_data, 'cd');
    assert.equal(res.user.login, user.login, 'fields not sent stay as they were');
    const found = await CB.users.getV2({ id: { in: [user.id] } });
    assert.equal(found.items[0]?.full_name, 'New', 'the change is stored');
  });

  it('refuses a new password without old_password (422)', async () => {
    await userSession(user.login);
    const err = await rejection(CB.users.update({ password: 'brand-new-pass-1' }), 'update without old_password');
    assertApiError(err, 422, 'missing old_password');
  });

  it('refuses a new password with a wrong old_password (422)', async () => {
    await userSession(user.login);
    const err = await rejection(
      CB.users.update({ password: 'brand-new-pass-1', old_password: 'not-the-old-one' }),
      'update with wrong old_password'
    );
    assertApiError(err, 422, 'wrong old_password');
  });

  it('changes the password with the right old_password; the new one then signs in', async () => {
    await userSession(user.login);
    const res = await CB.users.update({ password: 'brand-new-pass-1', old_password: PASSWORD });
    assert.equal(res.user?.id, user.id);
    assert.ok(!JSON.stringify(res).includes('brand-new-pass-1'));
    fresh();
    const s = await CB.createSession({ login: user.login, password: 'brand-new-pass-1' });
    assert.equal(s.user_id, user.id);
    fresh();
    const err = await rejection(CB.createSession({ login: user.login, password: PASSWORD }), 'old password');
    assertApiError(err, [401, 422], 'old password after change');
  });

  it('an app session (no user) cannot update a user', async () => {
    fresh();
    await CB.createSession();
    CB.service.setCurrentUserId(user.id); // force PUT /users/<id>.json
    const err = await rejection(CB.users.update({ full_name: 'Hacker' }), 'update from app session');
    assertApiError(err, [401, 403], 'update from app session');
  });

  it("a user cannot update someone else's account", async () => {
    const other = await signup();
    await userSession(other.login);
    CB.service.setCurrentUserId(user.id); // PUT /users/<user.id>.json with other's token
    const err = await rejection(CB.users.update({ full_name: 'Hacker' }), "update of another user");
    assertApiError(err, [403, 404], 'update another user');
  });
});

describe('7. login / logout on an application session', () => {
  let user;
  before(async () => {
    user = await signup();
  });

  it('login() upgrades the app session, logout() downgrades it', async () => {
    fresh();
    const s = await CB.createSession();
    assert.ok(!s.user_id);

    const u = await CB.login({ login: user.login, password: PASSWORD });
    assert.equal(u.id, user.id, `login must resolve with the user: ${JSON.stringify(u)}`);
    assert.equal(u.login, user.login);
    assert.equal(CB.service.getCurrentUserId(), user.id);

    const after = await CB.getSession();
    assert.equal(after.token, s.token, 'same token');
    assert.equal(after.user_id, user.id, 'the session now belongs to the user');

    const upd = await CB.users.update({ full_name: 'Logged In' });
    assert.equal(upd.user.full_name, 'Logged In', 'a user action works after login');

    const out = await CB.logout();
    assert.ok(out === '' || out === ' ' || typeof out === 'string', `logout resolves with text, got ${JSON.stringify(out)}`);

    const down = await CB.getSession();
    assert.equal(down.token, s.token, 'the token survives logout');
    assert.ok(!down.user_id, `after logout the session has no user, got ${down.user_id}`);

    // The SDK forgot the current user: update goes to PUT /users.json and must fail.
    await rejection(CB.users.update({ full_name: 'Nope' }), 'update after logout');
    // Even when the id is put back, the server must refuse: the session has no user any more.
    CB.service.setCurrentUserId(user.id);
    const err = await rejection(CB.users.update({ full_name: 'Nope' }), 'update /users/<id> after logout');
    assertApiError(err, [401, 403], 'update after logout');
  });

  it('login() with a wrong password is rejected and leaves the session without user', async () => {
    fresh();
    await CB.createSession();
    const err = await rejection(CB.login({ login: user.login, password: 'wrong-password-1' }));
    assertApiError(err, [401, 422], 'login wrong password');
    const s = await CB.getSession();
    assert.ok(!s.user_id);
  });

  it('logout() on an app session (no user) is rejected', async () => {
    fresh();
    await CB.createSession();
    const err = await rejection(CB.logout(), 'logout without user');
    assert.ok([401, 403, 404, 422].includes(err.code), JSON.stringify(err));
  });
});

describe('8. destroySession', () => {
  let user;
  before(async () => {
    user = await signup();
  });

  it('destroys the session; its token is then refused with 401', async () => {
    const s = await userSession(user.login);
    const res = await CB.destroySession();
    assert.ok(res === undefined, 'destroySession resolves with nothing');
    assert.equal(CB.service.getSession(), null, 'the SDK cleared its session');

    CB.setSession({ token: s.token });
    const err = await rejection(CB.users.getV2({ id: { in: [user.id] } }), 'getV2 with destroyed token');
    assertNoSessionError(err, 'destroyed token');

    const err2 = await rejection(CB.getSession(), 'getSession with destroyed token');
    assertApiError(err2, 401, 'getSession with destroyed token');

    // POST /session.json while holding the dead token (the SDK sends it as CB-Token) still works.
    const again = await CB.createSession({ login: user.login, password: PASSWORD });
    assert.equal(again.user_id, user.id);
    assert.notEqual(again.token, s.token);
  });

  it('a request without any token is refused with 401', async () => {
    const res = await rawFetch(`${server.url}/users/v2.json?login=${encodeURIComponent(user.login)}`);
    assert.equal(res.status, 401, res.text);
    assert.ok(res.json && res.json.errors, `error body must be JSON with "errors": ${res.text}`);
  });

  it('destroying an app session works too', async () => {
    fresh();
    const s = await CB.createSession();
    await CB.destroySession();
    const res = await rawFetch(`${server.url}/session.json`, { token: s.token });
    assert.equal(res.status, 401, res.text);
  });
});

describe('10. users.delete', () => {
  it('deletes the current user: lookups miss it, its login no longer signs in, its sessions die', async () => {
    const user = await signup();
    const watcher = await signup();
    const s = await userSession(user.login);

    const res = await CB.users.delete();
    assert.ok(typeof res === 'string', `users.delete resolves with the (text) body, got ${JSON.stringify(res)}`);

    // The deleted user's own session is gone with it.
    CB.setSession({ token: s.token });
    const errOwn = await rejection(CB.users.getV2({ id: { in: [watcher.id] } }), 'request with deleted user token');
    assertNoSessionError(errOwn, "deleted user's session");

    await userSession(watcher.login);
    const found = await CB.users.getV2({ id: { in: [user.id] } });
    assert.equal(found.total_entries, 0, JSON.stringify(found));
    assert.deepEqual(found.items, []);
    const byLogin = await CB.users.getV2({ login: user.login });
    assert.equal(byLogin.total_entries, 0);

    fresh();
    const err = await rejection(CB.createSession({ login: user.login, password: PASSWORD }), 'sign in as deleted user');
    assertApiError(err, [401, 404, 422], 'sign in as deleted user');

    // The login is free again.
    fresh();
    await CB.createSession();
    const re = await CB.users.signup({ login: user.login, password: PASSWORD });
    assert.equal(re.user.login, user.login);
    assert.notEqual(re.user.id, user.id, 'a new user gets a new id');
  });

  it("a user cannot delete someone else's account", async () => {
    const victim = await signup();
    const other = await signup();
    await userSession(other.login);
    CB.service.setCurrentUserId(victim.id); // DELETE /users/<victim.id>.json with other's token
    const err = await rejection(CB.users.delete(), 'delete of another user');
    assert.ok([403, 404].includes(err.code), JSON.stringify(err));
    const still = await CB.users.getV2({ id: { in: [victim.id] } });
    assert.equal(still.total_entries, 1, 'the victim still exists');
  });
});
