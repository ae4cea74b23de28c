// An S3-compatible server for the S3 blob backend's tests: moto from PyPI, installed into
// e2e/.venv by e2e/s3/setup.sh (scripts/test.sh runs it). Missing, the tests fail: they don't skip.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { repoRoot } from './server.mjs';

export const S3_BUCKET = 'confab-e2e';
export const S3_REGION = 'us-east-1';
const CREDENTIALS = { AWS_ACCESS_KEY_ID: 'AKIDCONFABE2E', AWS_SECRET_ACCESS_KEY: 'confab-e2e-secret' };

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts moto with one empty bucket. Returns { endpoint, serverEnv, stop() }; `serverEnv` is what
 * `startServer({ env })` needs to keep blobs in that bucket.
 */
export async function startS3() {
  const python = process.env.CONFAB_TEST_PYTHON || path.join(repoRoot, 'e2e', '.venv', 'bin', 'python');
  if (!existsSync(python)) {
    throw new Error(`${python} is missing: run e2e/s3/setup.sh to install the S3 test server`);
  }
  const port = await freePort();
  const child = spawn(python, ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (c) => (log += c.toString('utf8')));
  const stop = () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  process.on('exit', stop);
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      // moto takes an unsigned bucket creation.
      const res = await fetch(`${endpoint}/${S3_BUCKET}`, { method: 'PUT' });
      if (!res.ok) throw new Error(`creating the bucket answered ${res.status}`);
      break;
    } catch (err) {
      if (child.exitCode !== null || Date.now() > deadline) {
        stop();
        throw new Error(`moto did not start on ${endpoint}: ${err.message}\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    endpoint,
    serverEnv: {
      CONFAB_BLOB_S3_ENDPOINT: endpoint,
      CONFAB_BLOB_S3_BUCKET: S3_BUCKET,
      CONFAB_BLOB_S3_REGION: S3_REGION,
      ...CREDENTIALS,
    },
    stop,
  };
}
