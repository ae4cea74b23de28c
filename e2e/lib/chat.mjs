// Helpers for the chat REST end-to-end tests (test/chat-*.test.mjs, test/admin-chat.test.mjs).
//
// Several users take turns with the SDK's process-wide session: `signupUsers` signs them up and
// opens one session per user, `as(CB, user)` hands the SDK that user's session (CB.setSession),
// so every request after it carries that user's CB-Token.

import assert from 'node:assert/strict';

import { sdkConfig } from './server.mjs';
import { uniq, rejection, rawFetch } from './util.mjs';

export const CHAT_PASSWORD = 'chat-e2e-pass-1';

/** Dialog types, numbered as the REST API (the seed) numbers them. The SDK's own enum differs. */
export const T = Object.freeze({ BROADCAST: 1, GROUP: 2, PRIVATE: 3, PUBLIC: 4 });

/** A well-formed ObjectId nobody has. */
export const MISSING_ID = 'ffffffffffffffffffffff00';

/** Re-inits the SDK for `app` on `server`: no token, no current user. */
export function initSdk(CB, server, app = server.app) {
  CB.init({ appId: app.id, authKey: app.auth_key }, sdkConfig(server));
}

/**
 * Signs up one user per name (full_name = the name) and opens a session for each.
 * Returns { [name]: { id, login, full_name, session } }. Leaves the SDK on the last user's session.
 */
export async function signupUsers(CB, server, names, app = server.app) {
  initSdk(CB, server, app);
  await CB.createSession();
  const out = {};
  for (const name of names) {
    const login = uniq(`${name.toLowerCase().replace(/[^a-z0-9]/g, '')}_`);
    const res = await CB.users.signup({ login, password: CHAT_PASSWORD, full_name: name });
    assert.ok(res?.user?.id, `signup of ${name}: ${JSON.stringify(res)}`);
    out[name] = { id: res.user.id, login, full_name: name };
  }
  for (const name of names) {
    const config = sdkConfig(server);
    CB.init({ appId: app.id, authKey: app.auth_key }, config);
    const s = await CB.createSession({ login: out[name].login, password: CHAT_PASSWORD });
    assert.equal(s.user_id, out[name].id, `session of ${name}`);
    out[name].session = s;
    // On a cluster each user keeps the node they signed in on, so two users' requests cross nodes.
    if (server.nodes) out[name].sdk = { creds: { appId: app.id, authKey: app.auth_key }, config };
  }
  return out;
}

/** Makes the SDK act as `user` (a value from signupUsers), on that user's node in a cluster. */
export function as(CB, user) {
  if (user.sdk) CB.init(user.sdk.creds, user.sdk.config);
  CB.setSession(user.session);
  assert.equal(CB.service.getCurrentUserId(), user.id);
  return user;
}

export function assertObjectId(v, what = 'id') {
  assert.equal(typeof v, 'string', `${what} must be a string, got ${JSON.stringify(v)}`);
  assert.match(v, /^[0-9a-f]{24}$/, `${what} must be a 24-hex ObjectId, got ${v}`);
}

/** ISO 8601 UTC date-time like "2018-12-06T16:19:24Z", not too far from now. */
export function assertIsoNow(v, what = 'date') {
  assert.equal(typeof v, 'string', `${what} must be an ISO string, got ${JSON.stringify(v)}`);
  assert.match(v, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, `${what}: ${v}`);
  const ms = Date.parse(v);
  assert.ok(Math.abs(ms - Date.now()) < 120_000, `${what} ${v} is not close to now`);
}

/** Unix seconds (integer), close to now. */
export function assertUnixNow(v, what = 'date_sent') {
  assert.equal(typeof v, 'number', `${what} must be a number, got ${JSON.stringify(v)}`);
  assert.ok(Number.isInteger(v), `${what} must be whole unix seconds, got ${v}`);
  assert.ok(Math.abs(v - Date.now() / 1000) < 120, `${what} ${v} is not close to now (unix seconds)`);
}

/** Numeric ids, sorted, for order-free comparison. */
export const sortedIds = (list) => [...(list ?? [])].map(Number).sort((a, b) => a - b);

/** The dialog as `user` sees it through dialog.list({_id}), or undefined when it is not listed. */
export async function dialogAs(CB, user, id) {
  as(CB, user);
  const res = await CB.chat.dialog.list({ _id: id });
  assert.ok(Array.isArray(res?.items), `dialog.list({_id}) must answer {items:[…]}, got ${JSON.stringify(res)}`);
  assert.ok(res.items.length <= 1, `dialog.list({_id}) returned ${res.items.length} dialogs`);
  return res.items[0];
}

/** All dialog ids `user` sees (one big page). */
export async function dialogIdsAs(CB, user, params = {}) {
  as(CB, user);
  const res = await CB.chat.dialog.list({ limit: 100, ...params });
  return res.items.map((d) => d._id);
}

/** The messages of a dialog as `user` sees them, WITHOUT marking them read. */
export async function messagesAs(CB, user, dialogId, params = {}) {
  as(CB, user);
  const res = await CB.chat.message.list({ chat_dialog_id: dialogId, mark_as_read: 0, limit: 100, ...params });
  assert.ok(Array.isArray(res?.items), `message.list must answer {items:[…]}, got ${JSON.stringify(res)}`);
  return res.items;
}

/** Awaits an SDK call that must fail with one of `codes`; returns the error. */
export async function refused(promise, codes, what) {
  const err = await rejection(promise, what);
  const list = Array.isArray(codes) ? codes : [codes];
  assert.ok(err && typeof err === 'object', `${what}: expected an error object, got ${String(err)}`);
  assert.ok(list.includes(err.code), `${what}: expected HTTP ${list.join(' or ')}, got ${JSON.stringify(err)}`);
  return err;
}

/** Posts a message as `user` and returns it. */
export async function post(CB, user, dialogId, text, extra = {}) {
  as(CB, user);
  const m = await CB.chat.message.create({ chat_dialog_id: dialogId, message: text, ...extra });
  assert.ok(m && typeof m._id === 'string', `message.create must answer a Message, got ${JSON.stringify(m)}`);
  return m;
}

/**
 * The admin REST API (`CB-Administration-API-Key`), which the SDK does not cover.
 * `query` is an object of already flat keys, e.g. {'_id[lt]': id, limit: 3}.
 */
export async function adminFetch(server, apiKey, method, path, { query, body } = {}) {
  let url = `${server.url}${path}`;
  if (query) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) qs.append(k, String(v));
    url += `?${qs}`;
  }
  const headers = apiKey == null ? {} : { 'CB-Administration-API-Key': apiKey };
  return rawFetch(url, { method, body, headers });
}
