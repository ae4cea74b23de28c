// Blobs through the real connectycube@6.1.2 SDK: storage.createAndUpload (create → multipart
// upload to the URL the server returned → complete), getInfo/getFile/getFileObject, list, update,
// download through privateUrl/publicUrl, delete; and a message carrying the blob as an
// attachment, which the recipient downloads with their own session.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { startServer } from '../lib/server.mjs';
import { loadSdk } from '../lib/util.mjs';
import { T, signupUsers, as, refused, messagesAs } from '../lib/chat.mjs';

const CB = await loadSdk();

let server;
let U;

before(async () => {
  server = await startServer();
  U = await signupUsers(CB, server, ['A', 'B']);
});

after(async () => {
  await server?.stop();
});

/** The SDK's Node build posts with the `form-data` package, which takes a Buffer as the file. */
const upload = (bytes, extra = {}) =>
  CB.storage.createAndUpload({
    name: 'photo.bin',
    file: bytes,
    type: 'application/octet-stream',
    size: bytes.length,
    public: false,
    ...extra,
  });

const fetchBytes = async (url) => {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type'), bytes: Buffer.from(await res.arrayBuffer()) };
};

describe('storage', () => {
  const bytes = randomBytes(200_000);
  let blob;

  it('createAndUpload resolves with the blob, and the bytes come back through privateUrl', async () => {
    as(CB, U.A);
    blob = await upload(bytes);
    assert.ok(Number.isInteger(blob.id), JSON.stringify(blob));
    assert.equal(typeof blob.uid, 'string');
    assert.equal(blob.size, bytes.length);
    const got = await fetchBytes(CB.storage.privateUrl(blob.uid));
    assert.equal(got.status, 200);
    assert.equal(got.type, 'application/octet-stream');
    assert.ok(got.bytes.equals(bytes), 'downloaded bytes equal the uploaded ones');
  });

  it('getInfo, getFile and getFileObject answer {blob} with the stored size', async () => {
    as(CB, U.A);
    for (const res of [
      await CB.storage.getInfo(blob.id),
      await CB.storage.getFile(blob.uid),
      await CB.storage.getFileObject(blob.uid, {}),
    ]) {
      assert.equal(res.blob.id, blob.id);
      assert.equal(res.blob.uid, blob.uid);
      assert.equal(res.blob.size, bytes.length);
      assert.equal(res.blob.public, false);
    }
  });

  it('list pages the caller\'s blobs; update answers {blob}', async () => {
    as(CB, U.A);
    const second = await upload(Buffer.from('second'), { public: true });
    const page = await CB.storage.list({ current_page: 1, per_page: 1 });
    assert.equal(page.total_entries, 2, JSON.stringify(page));
    assert.equal(page.items.length, 1);
    assert.equal(page.per_page, 1);
    const ids = [page.items[0].blob.id, (await CB.storage.list({ current_page: 2, per_page: 1 })).items[0].blob.id];
    assert.deepEqual(ids.sort(), [blob.id, second.id].sort());
    const updated = await CB.storage.update({ id: second.id, name: 'renamed.txt' });
    assert.equal(updated.blob.id, second.id);

    // Public: no token needed.
    const got = await fetchBytes(CB.storage.publicUrl(second.uid));
    assert.equal(got.status, 200);
    assert.equal(got.bytes.toString(), 'second');
    // Private: no token, no bytes.
    assert.equal((await fetchBytes(CB.storage.publicUrl(blob.uid))).status, 401);
    as(CB, U.B);
    assert.equal((await CB.storage.list()).total_entries, 0);
    await refused(CB.storage.delete(second.id), [403, 404], 'delete of another user\'s blob');
  });

  it('a message with the blob as attachment: the recipient downloads it with their own token', async () => {
    as(CB, U.A);
    const dialog = await CB.chat.dialog.create({ type: T.PRIVATE, occupants_ids: [U.B.id] });
    await CB.chat.message.create({
      chat_dialog_id: dialog._id,
      message: 'see attachment',
      attachments: [{ type: 'image', uid: blob.uid, id: String(blob.id) }],
    });
    const [m] = await messagesAs(CB, U.B, dialog._id);
    assert.equal(m.attachments?.[0]?.uid, blob.uid, JSON.stringify(m));
    const url = CB.storage.privateUrl(m.attachments[0].uid);
    assert.ok(url.includes(`token=${U.B.session.token}`));
    const got = await fetchBytes(url);
    assert.equal(got.status, 200);
    assert.ok(got.bytes.equals(bytes));
  });

  it('delete removes the blob: info 404, download 404', async () => {
    as(CB, U.A);
    await CB.storage.delete(blob.id);
    await refused(CB.storage.getInfo(blob.id), 404, 'info of a deleted blob');
    assert.equal((await fetchBytes(CB.storage.privateUrl(blob.uid))).status, 404);
  });

  it('create without a name or content type is a 422 and stores nothing', async () => {
    as(CB, U.A);
    await refused(CB.storage.create({ content_type: 'text/plain' }), 422, 'no name');
    await refused(CB.storage.create({ name: 'x.txt' }), 422, 'no content_type');
    assert.equal((await CB.storage.list()).total_entries, 1);
  });
});
