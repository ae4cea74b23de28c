// The binary itself: app creation output, readiness, graceful shutdown on SIGTERM.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { startServer } from '../lib/server.mjs';

describe('server lifecycle', () => {
  it('starts on ephemeral ports, is healthy, and exits 0 on SIGTERM', async () => {
    const server = await startServer();
    let stopped = false;
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.ok(server.port > 0);
      const health = await fetch(`${server.url}/health`);
      assert.equal(health.status, 200);

      const result = await server.stop();
      stopped = true;
      assert.ok(!result.timedOut, `the server did not exit within 10 s of SIGTERM.\nlog:\n${server.logs()}`);
      assert.equal(result.code, 0, `exit code after SIGTERM: ${JSON.stringify(result)}\nlog:\n${server.logs()}`);

      await assert.rejects(fetch(`${server.url}/health`), 'the port is closed after shutdown');
    } finally {
      if (!stopped) await server.stop();
    }
  });
});
