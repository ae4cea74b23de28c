// Drives SDK chat users in child processes (see lib/sdk-peer.mjs) and waits for their listener events.

import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { sdkConfig, XMPP_TRANSPORT } from './server.mjs';
import { uniq } from './util.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const EVENT_TIMEOUT_MS = 10_000;

/**
 * Starts one SDK user process. `env` is added to its environment before the SDK loads
 * (e.g. CUBE_TCP_ENABLE=1 for XMPP over TCP, which XMPP_TRANSPORT=tcp sets for every peer).
 */
export async function startPeer(env = {}) {
  const transportEnv = XMPP_TRANSPORT === 'tcp' ? { CUBE_TCP_ENABLE: '1' } : {};
  const child = fork(path.join(here, 'sdk-peer.mjs'), [], {
    env: { ...process.env, ...transportEnv, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map();
  const events = [];
  const waiters = new Set();
  let nextId = 1;
  const ready = new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`peer exited early (${code})`)));
    child.on('message', (m) => {
      if (m.ready) return resolve();
      if (m.event) {
        events.push(m);
        for (const w of [...waiters]) w();
        return;
      }
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(Object.assign(new Error(`peer command failed: ${JSON.stringify(m.error)}`), { sdkError: m.error }));
    });
  });
  await ready;

  const peer = {
    /** Runs an SDK command in the peer. */
    call(cmd, ...args) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        child.send({ id, cmd, args });
      });
    },
    /** All events seen so far: `{event, args}`. */
    events,
    /**
     * Resolves with the args of the first not-yet-consumed `event` whose args satisfy `pred`;
     * the event is consumed.
     */
    waitFor(event, pred = () => true, timeout = EVENT_TIMEOUT_MS) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const i = events.findIndex((e) => e.event === event && !e.used && pred(...e.args));
          if (i === -1) return false;
          events[i].used = true;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(events[i].args);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no "${event}" event within ${timeout} ms; events: ${JSON.stringify(events)}`));
        }, timeout);
        if (!check()) waiters.add(check);
      });
    },
    /** Events of a kind not consumed yet. */
    unconsumed(event) {
      return events.filter((e) => e.event === event && !e.used);
    },
    kill() {
      child.kill('SIGKILL');
    },
  };
  return peer;
}

/**
 * One SDK user, signed up and connected to chat: `{ peer, id, token }`.
 * `config` is merged into the SDK config; `env` goes to the peer process (e.g. CUBE_TCP_ENABLE).
 */
export async function startChatUser(server, name, password, { config = {}, env = {} } = {}) {
  const peer = await startPeer(env);
  await peer.call('init', { appId: server.app.id, authKey: server.app.auth_key }, sdkConfig(server, config));
  const { userId, token } = await peer.call('signupAndLogin', uniq(name), password);
  if ((await peer.call('connect', userId, token)) !== true) throw new Error(`${name} could not connect`);
  return { peer, id: userId, token };
}

