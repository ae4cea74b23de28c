// Starts the real confab binary for end-to-end tests and hands out fresh app credentials.
//
// The binary is NOT built here: `cargo build -p confab` must have run first
// (or point CONFAB_BIN at a binary).

import { spawn, execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root: the parent of e2e/. */
export const repoRoot = path.resolve(here, '..', '..');

export function binaryPath() {
  return process.env.CONFAB_BIN || path.join(repoRoot, 'target', 'debug', 'confab');
}

const STARTUP_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

/** Every server still running, so a crashing test process does not leave any behind. */
const running = new Set();
process.on('exit', () => {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

function baseEnv(dataDir, extra = {}) {
  const env = { ...process.env, CONFAB_DATA_DIR: dataDir, ...extra };
  // CONFAB_BIN is for this harness; the server would read it as an unknown config key.
  delete env.CONFAB_BIN;
  // Keep server logs free of colour codes so the "listening" line is easy to match.
  env.NO_COLOR = '1';
  return env;
}

function checkBinary() {
  const bin = binaryPath();
  if (!existsSync(bin)) {
    throw new Error(
      `confab binary not found at ${bin}: run \`cargo build -p confab\` first (or set CONFAB_BIN)`
    );
  }
  return bin;
}

/**
 * Runs `confab app create --name <name>` against a data dir and returns the parsed credentials
 * `{ id, auth_key, auth_secret, api_key }`. Works while a server uses the same dir.
 */
export async function createApp(dataDir, name = 'e2e', env = {}) {
  const bin = checkBinary();
  let stdout;
  let stderr;
  try {
    ({ stdout, stderr } = await execFileP(bin, ['app', 'create', '--name', name], {
      env: baseEnv(dataDir, env),
      timeout: 20_000,
    }));
  } catch (err) {
    throw new Error(
      `\`confab app create --name ${name}\` failed (exit ${err.code}): ${err.stderr || err.message}`
    );
  }
  const app = parseSingleJsonObject(stdout);
  if (!app) {
    throw new Error(
      `\`confab app create\` did not print one JSON object on stdout.\nstdout: ${stdout}\nstderr: ${stderr}`
    );
  }
  return app;
}

function parseSingleJsonObject(text) {
  const trimmed = text.trim();
  try {
    const v = JSON.parse(trimmed);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v;
  } catch {
    /* fall through */
  }
  return null;
}

/**
 * Starts `confab serve` on ephemeral ports with a fresh data dir and one fresh app.
 *
 * options:
 *   sessionTtlSecs — sets CONFAB_SESSION_TTL_SECS
 *   env            — extra environment variables
 *   appName        — name of the first app (default 'e2e')
 *   dataDir, app   — reuse an earlier server's data directory and app (a restart; pair with
 *                    env CONFAB_HTTP_ADDR/CONFAB_XMPP_ADDR to keep its ports)
 *   chatserver     — also serve the ChatServer face (docs/chatserver.md) on a free port, its users
 *                    being the app's users; `chatserverUrl` is its base URL
 *
 * Returns { url, port, httpAddr, chatUrl, chatserverUrl, dataDir, app, createApp(name), logs(), stop() }.
 */
export async function startServer(options = {}) {
  const nodes = Number(process.env.E2E_CLUSTER_NODES || 0);
  if (nodes >= 2 && !options.dataDir && !options.app) return startCluster(nodes, options);
  return startNode(options);
}

/**
 * `E2E_CLUSTER_NODES=N`: N nodes on a fresh PostgreSQL database (a new one on the server
 * `CONFAB_TEST_DATABASE_URL` names, made with `psql`) and a private nats-server. The result looks
 * like one server (node 0's addresses) plus `nodes`; `sdkConfig` hands each peer the next node in
 * turn, so the two ends of a test talk across nodes.
 */
async function startCluster(count, options) {
  const base = process.env.CONFAB_TEST_DATABASE_URL;
  if (!base) throw new Error('E2E_CLUSTER_NODES needs CONFAB_TEST_DATABASE_URL (scripts/postgres.sh)');
  const name = `e2e_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
  await execFileP('psql', [base, '-q', '-c', `CREATE DATABASE ${name}`]);
  const dbUrl = new URL(base);
  dbUrl.pathname = `/${name}`;
  const nats = await startNats();
  const shared = {
    CONFAB_DATABASE_URL: dbUrl.toString(),
    CONFAB_NATS_URL: nats.url,
  };
  const started = [];
  try {
    const firstDir = await mkdtemp(path.join(tmpdir(), 'confab-e2e-'));
    const app = await createApp(firstDir, options.appName ?? 'e2e', shared);
    for (let i = 0; i < count; i++) {
      const env = { ...shared, CONFAB_NODE_ID: `e2e-${i}`, ...(options.env ?? {}) };
      const dataDir = i === 0 ? firstDir : undefined;
      started.push(await startNode({ ...options, env, app, dataDir }));
    }
  } catch (err) {
    await Promise.all(started.map((n) => n.stop()));
    nats.stop();
    throw err;
  }
  let turn = 0;
  return {
    ...started[0],
    nodes: started,
    nextNode: () => started[turn++ % started.length],
    createApp: (appName = 'e2e-second') => createApp(started[0].dataDir, appName, shared),
    stop: async (opts) => {
      const results = await Promise.all(started.map((n) => n.stop(opts)));
      nats.stop();
      return results[0];
    },
  };
}

/** A private nats-server (Debian's package) on a free loopback port. */
async function startNats() {
  const port = await new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const p = srv.address().port;
      srv.close(() => resolve(p));
    });
  });
  const bin = existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';
  const child = spawn(bin, ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  running.add(child);
  for (let i = 0; i < 200; i++) {
    const up = await new Promise((resolve) => {
      const sock = net.connect(port, '127.0.0.1', () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('error', () => resolve(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    stop: () => {
      running.delete(child);
      child.kill('SIGKILL');
    },
  };
}

async function startNode(options = {}) {
  const bin = checkBinary();
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'confab-e2e-')));
  let child;
  try {
    const app = options.app ?? (await createApp(dataDir, options.appName ?? 'e2e'));

    const extra = {
      CONFAB_HTTP_ADDR: '127.0.0.1:0',
      CONFAB_XMPP_ADDR: '127.0.0.1:0',
      ...(options.sessionTtlSecs != null ? { CONFAB_SESSION_TTL_SECS: String(options.sessionTtlSecs) } : {}),
      ...(options.chatserver ? { CONFAB_CHATSERVER_ADDR: '127.0.0.1:0', CONFAB_CHATSERVER_APP_ID: String(app.id) } : {}),
      ...(options.env ?? {}),
    };
    child = spawn(bin, ['serve'], {
      env: baseEnv(dataDir, extra),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);

    const logLines = [];
    // XMPP over TCP logs its own `listening xmpp=ADDR` line, the ChatServer face `listening chatserver=ADDR`.
    let xmppAddr = null;
    let chatserverAddr = null;
    const exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        running.delete(child);
        resolve({ code, signal });
      });
    });

    const httpAddr = await new Promise((resolve, reject) => {
      let buffer = '';
      const timer = setTimeout(() => {
        reject(
          new Error(
            `confab serve did not log "listening http=..." within ${STARTUP_TIMEOUT_MS} ms.\n` +
              `log:\n${logLines.join('\n')}`
          )
        );
      }, STARTUP_TIMEOUT_MS);
      const onData = (chunk) => {
        buffer += chunk.toString('utf8');
        let nl;
        while ((nl = buffer.indexOf('\n')) !== -1) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          logLines.push(line);
          const x = /listening xmpp=(\S+)/.exec(line);
          if (x) xmppAddr = x[1].replace(/[,;]$/, '');
          const c = /listening chatserver=(\S+)/.exec(line);
          if (c) chatserverAddr = c[1].replace(/[,;]$/, '');
          const m = /listening http=(\S+)/.exec(line);
          if (m) {
            clearTimeout(timer);
            resolve(m[1].replace(/[,;]$/, ''));
          }
        }
      };
      child.stderr.on('data', onData);
      child.stdout.on('data', (chunk) => {
        for (const line of chunk.toString('utf8').split('\n')) if (line) logLines.push(`[stdout] ${line}`);
      });
      exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(
          new Error(
            `confab serve exited before listening (code ${code}, signal ${signal}).\nlog:\n${logLines.join('\n')}`
          )
        );
      });
    });

    const url = `http://${httpAddr}`;
    const port = Number(new URL(url).port);
    await waitForHealth(url);
    for (let i = 0; xmppAddr === null && i < 50; i++) await new Promise((r) => setTimeout(r, 20));
    if (options.chatserver && chatserverAddr === null) {
      throw new Error(`confab serve did not log "listening chatserver=...".\nlog:\n${logLines.join('\n')}`);
    }

    let stopped = null;
    // `keepData: true` leaves the data directory for a restart.
    const stop = async ({ keepData = false } = {}) => {
      if (stopped) return stopped;
      stopped = (async () => {
        let result;
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timeout = new Promise((resolve) => setTimeout(() => resolve(null), STOP_TIMEOUT_MS).unref());
          result = await Promise.race([exited, timeout]);
          if (result === null) {
            child.kill('SIGKILL');
            result = { ...(await exited), timedOut: true };
          }
        } else {
          result = await exited;
        }
        if (!keepData) await rm(dataDir, { recursive: true, force: true });
        return result;
      })();
      return stopped;
    };

    return {
      url,
      port,
      httpAddr,
      /** WebSocket chat URL on the HTTP port. */
      chatUrl: `ws://127.0.0.1:${port}/ws`,
      /** XMPP over TCP (`listening xmpp=…`), and the SDK's URL for it (needs CUBE_TCP_ENABLE). */
      xmppAddr,
      xmppUrl: xmppAddr ? `xmpp://${xmppAddr}` : null,
      /** The ChatServer face's base URL (`listening chatserver=…`), when started with `chatserver`. */
      chatserverUrl: chatserverAddr ? `http://${chatserverAddr}` : null,
      dataDir,
      app,
      createApp: (name = 'e2e-second') => createApp(dataDir, name),
      logs: () => logLines.join('\n'),
      stop,
    };
  } catch (err) {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
}

async function waitForHealth(url) {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  let last;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = err.message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`GET ${url}/health never answered 200 (last: ${last})`);
}

/**
 * The chat transport SDK peers use: `XMPP_TRANSPORT=tcp` runs the chat tests over XMPP on TCP (the SDK's
 * `CUBE_TCP_ENABLE`, see lib/peers.mjs), anything else over WebSocket.
 */
export const XMPP_TRANSPORT = process.env.XMPP_TRANSPORT === 'tcp' ? 'tcp' : 'ws';

/** SDK init options for a started server; `chat_url` follows XMPP_TRANSPORT. */
export function sdkConfig(server, extra = {}) {
  const node = server.nextNode ? server.nextNode() : server;
  const chatUrl = XMPP_TRANSPORT === 'tcp' ? node.xmppUrl : node.chatUrl;
  return {
    endpoints: { api_url: node.url, chat: 'localhost', chat_url: chatUrl },
    debug: { mode: 0 },
    ...extra,
  };
}
