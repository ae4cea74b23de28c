// Small helpers shared by the e2e tests.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

/** The real, unmodified SDK (Node ESM build). The instance is a process-wide singleton. */
export async function loadSdk() {
  return (await import('connectycube')).default;
}

/** A short unique lower-case suffix so names never clash between runs. */
export function uniq(prefix = 'u') {
  return `${prefix}${randomBytes(4).toString('hex')}`;
}

/** Awaits a promise that must reject and returns the rejection (the SDK rejects with {code, info}). */
export async function rejection(promise, what = 'call') {
  let value;
  try {
    value = await promise;
  } catch (err) {
    return err;
  }
  assert.fail(`${what} was expected to reject but resolved with ${JSON.stringify(value)}`);
}

/** Asserts an SDK error object `{code, info}` with one of the given HTTP codes and an `errors` body. */
export function assertApiError(err, codes, what = 'error') {
  const list = Array.isArray(codes) ? codes : [codes];
  assert.ok(err && typeof err === 'object', `${what}: expected an error object, got ${String(err)}`);
  assert.ok(
    list.includes(err.code),
    `${what}: expected HTTP ${list.join(' or ')}, got ${JSON.stringify(err)}`
  );
  assert.ok(
    err.info && typeof err.info === 'object' && 'errors' in err.info,
    `${what}: expected a JSON body with "errors", got ${JSON.stringify(err.info)}`
  );
}

/** The body the SDK needs to fire its `sessionExpired` hook. */
export const NO_SESSION = 'Required session does not exist';

export function assertNoSessionError(err, what = 'error') {
  assertApiError(err, 401, what);
  assert.equal(
    err.info?.errors?.base?.[0],
    NO_SESSION,
    `${what}: a 401 for a missing/expired token must carry {"errors":{"base":["${NO_SESSION}"]}}, got ${JSON.stringify(err.info)}`
  );
}

/** user_tags as a list, whether the server sends an array (SDK types) or a comma string (legacy API). */
export function tagsOf(user) {
  const t = user.user_tags;
  if (Array.isArray(t)) return [...t].sort();
  if (typeof t === 'string') return t.split(',').map((s) => s.trim()).filter(Boolean).sort();
  return [];
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Raw HTTP helper for the few checks the SDK cannot express. */
export async function rawFetch(url, { method = 'GET', token, body, headers = {} } = {}) {
  const h = { 'CB-SDK': 'JS 6.1.2 - Client', ...headers };
  if (token) h['CB-Token'] = token;
  if (body !== undefined) h['Content-Type'] = 'application/json;charset=utf-8';
  const res = await fetch(url, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json, headers: res.headers };
}
