// Blobs kept in S3 (moto), through the real connectycube@6.1.2 SDK: storage.createAndUpload posts
// the presigned fields and the file straight to the bucket, markUploaded completes, and the bytes
// come back through privateUrl (a redirect to a presigned GET); delete removes them.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { startServer } from '../lib/server.mjs';
import { startS3, S3_BUCKET } from '../lib/s3.mjs';
import { loadSdk } from '../lib/util.mjs';
import { signupUsers, as, refused } from '../lib/chat.mjs';

const CB = await loadSdk();

let s3;
let server;
let U;

before(async () => {
  s3 = await startS3();
  server = await startServer({ env: s3.serverEnv });
  U = await signupUsers(CB, server, ['A', 'B']);
});

after(async () => {
  await server?.stop();
  s3?.stop();
});

describe('storage on S3', () => {
  // The Node SDK posts a Buffer as a multipart part without a file name, which moto reads as a
  // text field: the bytes are text here so that moto keeps them exactly (S3 keeps any bytes).
  const bytes = Buffer.from(randomBytes(50_000).toString('hex'));
  let blob;

  it('create answers the bucket\'s presigned POST as the upload URL', async () => {
    as(CB, U.A);
    const res = await CB.storage.create({ name: 'notes.txt', content_type: 'text/plain', public: false });
    const params = res.blob.blob_object_access.params;
    assert.ok(params.startsWith(`${s3.endpoint}/${S3_BUCKET}?`), params);
    assert.ok(!params.includes('+'), `values are %-encoded: ${params}`);
    const fields = new URL(params).searchParams;
    assert.equal(fields.get('key'), res.blob.uid);
    assert.equal(fields.get('Content-Type'), 'text/plain');
    assert.equal(fields.get('x-amz-algorithm'), 'AWS4-HMAC-SHA256');
    const policy = JSON.parse(Buffer.from(fields.get('policy'), 'base64').toString());
    assert.ok(
      policy.conditions.some((c) => Array.isArray(c) && c[0] === 'content-length-range'),
      JSON.stringify(policy)
    );
    await CB.storage.delete(res.blob.id);
  });

  it('createAndUpload stores the bytes in the bucket; privateUrl gets them back', async () => {
    as(CB, U.A);
    blob = await CB.storage.createAndUpload({
      name: 'notes.txt',
      file: bytes,
      type: 'text/plain',
      size: bytes.length,
      public: false,
    });
    assert.ok(Number.isInteger(blob.id), JSON.stringify(blob));
    const info = await CB.storage.getInfo(blob.id);
    assert.equal(info.blob.size, bytes.length, 'the size is the stored object\'s');
    // Another user of the app downloads with their own session, as with an attachment.
    as(CB, U.B);
    const res = await fetch(CB.storage.privateUrl(blob.uid));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain');
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(bytes), 'downloaded bytes equal the uploaded ones');
    // Without a session: no bytes.
    assert.equal((await fetch(CB.storage.publicUrl(blob.uid))).status, 401);
  });

  it('a public blob downloads without a session', async () => {
    as(CB, U.A);
    const pub = await CB.storage.createAndUpload({
      name: 'p.txt',
      file: Buffer.from('public bytes'),
      type: 'text/plain',
      size: 12,
      public: true,
    });
    const res = await fetch(CB.storage.publicUrl(pub.uid));
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'public bytes');
  });

  it('delete removes the blob and its object', async () => {
    as(CB, U.A);
    const redirect = await fetch(CB.storage.privateUrl(blob.uid), { redirect: 'manual' });
    assert.equal(redirect.status, 307);
    const presigned = redirect.headers.get('location');
    assert.equal((await fetch(presigned)).status, 200);
    await CB.storage.delete(blob.id);
    await refused(CB.storage.getInfo(blob.id), 404, 'info of a deleted blob');
    assert.equal((await fetch(CB.storage.privateUrl(blob.uid))).status, 404);
    assert.equal((await fetch(presigned)).status, 404, 'the object is gone from the bucket');
  });
});
