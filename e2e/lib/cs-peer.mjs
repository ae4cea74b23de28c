// Drives ChatServer users written in Python (e2e/chatserver/cs_peer.py: `requests` + `websockets`)
// from a Node test: one child process speaking JSON lines, holding any number of named users.

import { spawn, execFile } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const clientDir = path.join(here, '..', 'chatserver');
const python = path.join(here, '..', '.venv', 'bin', 'python');

/** Creates e2e/.venv and installs the client's PyPI packages, so a fresh machine needs only Python 3. */
export async function setupPython() {
  await execFileP(path.join(clientDir, 'setup.sh'), [], { timeout: 300_000 });
}

/**
 * Starts the Python process against the ChatServer base URL. `call(user, cmd, args)` runs one
 * command as the named user and resolves with its value; a refused request rejects with an Error
 * carrying `status`.
 */
export async function startChatServerPeer(baseUrl) {
  const child = spawn(python, [path.join(clientDir, 'cs_peer.py'), baseUrl], {
    cwd: clientDir,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const pending = new Map();
  let nextId = 1;
  let exited = null;
  const lines = readline.createInterface({ input: child.stdout });
  const ready = new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      exited = `the Python client exited (code ${code}, signal ${signal})`;
      reject(new Error(exited));
      for (const p of pending.values()) p.reject(new Error(exited));
      pending.clear();
    });
    lines.on('line', (line) => {
      const m = JSON.parse(line);
      if (m.ready) return resolve();
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(Object.assign(new Error(`${p.what}: ${m.error}`), { status: m.status }));
    });
  });
  await ready;

  return {
    call(user, cmd, args = {}) {
      if (exited) return Promise.reject(new Error(exited));
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject, what: `${user} ${cmd}` });
        child.stdin.write(`${JSON.stringify({ id, user, cmd, args })}\n`);
      });
    },
    /** Closes stdin (the process closes its sockets and ends), killing it if it lingers. */
    async stop() {
      if (exited) return;
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
    },
  };
}
