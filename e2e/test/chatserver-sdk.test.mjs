// One conversation across both faces: a ChatServer client written in Python (`requests` +
// `websockets`, e2e/chatserver/) and the real ConnectyCube SDK talk in a personal chat and in group
// chats, both directions, live (WebSocket frames ↔ XMPP stanzas) and from history
// (`GET /chats/<id>/messages` ↔ `chat.message.list`), with edits and read marks crossing too.

import { before, after, it } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, sdkConfig } from '../lib/server.mjs';
import { startPeer } from '../lib/peers.mjs';
import { setupPython, startChatServerPeer } from '../lib/cs-peer.mjs';
import { loadSdk, uniq } from '../lib/util.mjs';

const PASSWORD = 'cross-face-pass-1';
const PY = 'py'; // the Python user's name in the Python process

let server;
let python; // the Python process
let sdk; // the SDK user's process
const pyUser = {}; // { id, username }
const sdkUser = {}; // { id, login }

/** Sorted copies for order-free comparisons (the order itself is checked by "history lists
 * messages of one second newest first"). */
const sorted = (rows) => rows.map((r) => JSON.stringify(r)).sort();

before(async () => {
  await setupPython();
  server = await startServer({ chatserver: true });
  python = await startChatServerPeer(server.chatserverUrl);
  sdk = await startPeer();
  await sdk.call('init', { appId: server.app.id, authKey: server.app.auth_key }, sdkConfig(server));
});

after(async () => {
  await python?.stop();
  sdk?.kill();
  await server?.stop();
});

/** The Python user's next WebSocket frame of `event` whose fields match; binary JSON is checked. */
async function pyFrame(event, match) {
  const { binary, frame } = await python.call(PY, 'next_event', { event, match });
  assert.equal(binary, true, `the "${event}" frame must be binary: ${JSON.stringify(frame)}`);
  return frame;
}

it('one account, two faces: each side finds and signs in as the other side\'s users', async () => {
  pyUser.username = uniq('py');
  const reg = await python.call(PY, 'register', { name: 'Py Thon', username: pyUser.username, password: PASSWORD });
  pyUser.id = reg.user.id;
  assert.equal(reg.user.username, pyUser.username);

  sdkUser.login = uniq('sdk');
  const signed = await sdk.call('signupAndLogin', sdkUser.login, PASSWORD);
  sdkUser.id = signed.userId;
  assert.equal(await sdk.call('connect', sdkUser.id, signed.token), true);

  // The SDK's user is a ChatServer user with its login as username (exact username search).
  const found = await python.call(PY, 'search_users', { query: sdkUser.login });
  assert.deepEqual(found.map((u) => [u.id, u.username]), [[sdkUser.id, sdkUser.login]]);
  // The Python user's password opens a ConnectyCube session, and the SDK's a ChatServer session.
  const CB = await loadSdk();
  CB.init({ appId: server.app.id, authKey: server.app.auth_key }, sdkConfig(server));
  const session = await CB.createSession({ login: pyUser.username, password: PASSWORD });
  assert.equal(session.user_id, pyUser.id);
  const other = await python.call('sdk-user-on-chatserver', 'login', { username: sdkUser.login, password: PASSWORD });
  assert.equal(other.user.id, sdkUser.id);

  assert.equal(await python.call(PY, 'open_ws'), true);
});

const personal = {}; // { chatId, dialogId }

it('personal chat: a Python post reaches the SDK over XMPP and its history', async () => {
  const chat = await python.call(PY, 'create_chat', { participants: [sdkUser.id], isPersonal: true });
  assert.equal(chat.isPersonal, true);
  personal.chatId = chat.id;

  const posted = await python.call(PY, 'post', { chatId: chat.id, text: 'hello from Python' });
  const [from, msg] = await sdk.waitFor('message', (_, m) => m.body === 'hello from Python');
  assert.equal(from, pyUser.id);
  assert.equal(msg.type, 'chat');
  assert.match(msg.dialog_id ?? '', /^[0-9a-f]{24}$/, JSON.stringify(msg));
  assert.equal(msg.extension.dialog_id, msg.dialog_id);
  personal.dialogId = msg.dialog_id;
  personal.pyMessageStanzaId = msg.id;
  personal.pyMessageId = posted.id;
  // The author's own socket hears it too (this face's rule).
  const own = await pyFrame('message', { 'payload.text': 'hello from Python' });
  assert.equal(own.payload.id, posted.id);

  // The SDK's REST face: the private dialog of the two, and the message in its history.
  const dialogs = await sdk.call('listDialogs', { type: 3 });
  const dialog = dialogs.items.find((d) => d._id === personal.dialogId);
  assert.ok(dialog, `dialog.list must show ${personal.dialogId}: ${JSON.stringify(dialogs)}`);
  assert.deepEqual([...dialog.occupants_ids].sort(), [pyUser.id, sdkUser.id].sort());
  const history = await sdk.call('messageList', { chat_dialog_id: personal.dialogId, mark_as_read: 0 });
  const listed = history.items.find((m) => m.message === 'hello from Python');
  assert.ok(listed, `message.list: ${JSON.stringify(history)}`);
  assert.equal(listed.sender_id, pyUser.id);
  assert.equal(listed._id, msg.id, 'the XMPP stanza id is the history id');
});

it('personal chat: an SDK message saved to history reaches the Python socket and its history', async () => {
  const stanzaId = await sdk.call('send', pyUser.id, {
    type: 'chat',
    body: 'hello from the SDK',
    markable: 1,
    extension: { save_to_history: 1, dialog_id: personal.dialogId },
  });
  personal.sdkMessageStanzaId = stanzaId;
  const frame = await pyFrame('message', { 'payload.text': 'hello from the SDK' });
  assert.equal(frame.source, String(sdkUser.id));
  assert.equal(frame.payload.chatId, personal.chatId);
  assert.equal(frame.payload.authorId, sdkUser.id);
  assert.equal(typeof frame.payload.createdAt, 'number', 'WebSocket dates are numbers (seconds since 2001)');
  personal.sdkMessageId = frame.payload.id;

  const page = await python.call(PY, 'list_messages', { chatId: personal.chatId });
  assert.deepEqual(
    sorted(page.map((m) => [m.id, m.text, m.authorId])),
    sorted([
      [frame.payload.id, 'hello from the SDK', sdkUser.id],
      [personal.pyMessageId, 'hello from Python', pyUser.id],
    ])
  );
});

it('personal chat: edits and read marks cross both ways', async () => {
  // The SDK corrects its message (XEP-0308): the Python socket hears the new text.
  await sdk.call('edit', {
    to: pyUser.id,
    dialogId: personal.dialogId,
    body: 'hello from the SDK, edited',
    originMessageId: personal.sdkMessageStanzaId,
    last: true,
  });
  const update = await pyFrame('messageUpdate', { 'payload.id': personal.sdkMessageId });
  assert.equal(update.payload.text, 'hello from the SDK, edited');
  assert.equal(update.source, String(sdkUser.id));

  // Python reads it: the SDK author gets the read marker for its stanza id.
  await python.call(PY, 'read', { chatId: personal.chatId, messageId: personal.sdkMessageId });
  assert.deepEqual(
    await sdk.waitFor('read', (id) => id === personal.sdkMessageStanzaId),
    [personal.sdkMessageStanzaId, personal.dialogId, pyUser.id]
  );

  // Python edits its message: the SDK gets the correction of the stanza it received.
  await python.call(PY, 'edit', { chatId: personal.chatId, messageId: personal.pyMessageId, text: 'hello from Python, edited' });
  const [id, isLast, body, dialogId, by] = await sdk.waitFor('update', (mid) => mid === personal.pyMessageStanzaId);
  assert.deepEqual([id, isLast, body, dialogId, by], [
    personal.pyMessageStanzaId, true, 'hello from Python, edited', personal.dialogId, pyUser.id,
  ]);

  // The SDK reads it (XEP-0333): the Python socket hears the new read mark.
  await sdk.call('read', { messageId: personal.pyMessageStanzaId, dialogId: personal.dialogId, userId: pyUser.id });
  const read = await pyFrame('messageUpdate', { 'payload.id': personal.pyMessageId, 'payload.readMarks.0.user.id': sdkUser.id });
  assert.equal(read.payload.readMarks.length, 1, JSON.stringify(read.payload));

  // Both histories have the new texts.
  const page = await python.call(PY, 'list_messages', { chatId: personal.chatId });
  assert.deepEqual(sorted(page.map((m) => m.text)), sorted(['hello from the SDK, edited', 'hello from Python, edited']));
  const history = await sdk.call('messageList', { chat_dialog_id: personal.dialogId, mark_as_read: 0 });
  assert.deepEqual(history.items.map((m) => m.message).sort(), ['hello from Python, edited', 'hello from the SDK, edited']);
});

// An XMPP message keeps the id its client made, and ids carry whole seconds: within one second, a
// message sent later can have the lower id. The SDK's id below is one its own generator can make
// (that second, a low random part); the face must still list it as the newer one.
it('history lists messages of one second newest first', async () => {
  const posted = await python.call(PY, 'post', { chatId: personal.chatId, text: 'first of one second' });
  const [, seen] = await sdk.waitFor('message', (_, m) => m.body === 'first of one second');
  const sameSecondLowId = `${seen.id.slice(0, 8)}0000000000000001`;
  await sdk.call('send', pyUser.id, {
    id: sameSecondLowId,
    type: 'chat',
    body: 'second of one second',
    extension: { save_to_history: 1, dialog_id: personal.dialogId },
  });
  const later = await pyFrame('message', { 'payload.text': 'second of one second' });
  const page = await python.call(PY, 'list_messages', { chatId: personal.chatId, count: 2 });
  assert.deepEqual(page.map((m) => m.id), [later.payload.id, posted.id], 'newest first');
});

it('group made by Python: the SDK lists and joins it, messages both ways, live and in history', async () => {
  const title = uniq('Python group ');
  const chat = await python.call(PY, 'create_chat', { participants: [sdkUser.id], isPersonal: false, title });
  assert.equal(chat.isPersonal, false);

  const dialogs = await sdk.call('listDialogs', { type: 2 });
  const dialog = dialogs.items.find((d) => d.name === title);
  assert.ok(dialog, `dialog.list must show the group "${title}": ${JSON.stringify(dialogs)}`);
  assert.deepEqual([...dialog.occupants_ids].sort(), [pyUser.id, sdkUser.id].sort());
  assert.equal(dialog.user_id, pyUser.id, 'the Python user owns it');
  assert.equal(await sdk.call('mucJoin', dialog._id), true);

  await python.call(PY, 'post', { chatId: chat.id, text: 'group hello from Python' });
  const [from, msg] = await sdk.waitFor('message', (_, m) => m.body === 'group hello from Python');
  assert.equal(from, pyUser.id);
  assert.equal(msg.type, 'groupchat');
  assert.equal(msg.dialog_id, dialog._id);
  assert.equal(msg.extension.dialog_id, dialog._id);

  await sdk.call('send', dialog._id, {
    type: 'groupchat',
    body: 'group hello from the SDK',
    extension: { save_to_history: 1, dialog_id: dialog._id },
  });
  const frame = await pyFrame('message', { 'payload.text': 'group hello from the SDK' });
  assert.equal(frame.source, String(sdkUser.id));
  assert.equal(frame.payload.chatId, chat.id);

  const page = await python.call(PY, 'list_messages', { chatId: chat.id });
  assert.deepEqual(sorted(page.map((m) => [m.text, m.authorId])), sorted([
    ['group hello from the SDK', sdkUser.id],
    ['group hello from Python', pyUser.id],
  ]));
  const history = await sdk.call('messageList', { chat_dialog_id: dialog._id, mark_as_read: 0 });
  assert.deepEqual(history.items.map((m) => [m.message, m.sender_id]).sort(), [
    ['group hello from Python', pyUser.id],
    ['group hello from the SDK', sdkUser.id],
  ]);
});

it('group made with the SDK: Python lists it, messages both ways', async () => {
  const name = uniq('SDK group ');
  const dialog = await sdk.call('dialogCreate', { type: 2, name, occupants_ids: [pyUser.id] });
  const chats = await python.call(PY, 'list_chats');
  const chat = chats.find((c) => c.title === name);
  assert.ok(chat, `GET /chats must show the group "${name}": ${JSON.stringify(chats)}`);
  assert.equal(chat.isPersonal, false);
  assert.equal(chat.owner.id, sdkUser.id);
  assert.equal(await sdk.call('mucJoin', dialog._id), true);

  await sdk.call('send', dialog._id, {
    type: 'groupchat',
    body: 'hello from the SDK group',
    extension: { save_to_history: 1, dialog_id: dialog._id },
  });
  const frame = await pyFrame('message', { 'payload.text': 'hello from the SDK group' });
  assert.equal(frame.payload.chatId, chat.id);
  assert.equal(frame.source, String(sdkUser.id));

  await python.call(PY, 'post', { chatId: chat.id, text: 'Python answers the SDK group' });
  const [from, msg] = await sdk.waitFor('message', (_, m) => m.body === 'Python answers the SDK group');
  assert.equal(from, pyUser.id);
  assert.equal(msg.type, 'groupchat');
  assert.equal(msg.dialog_id, dialog._id);

  const page = await python.call(PY, 'list_messages', { chatId: chat.id });
  assert.deepEqual(sorted(page.map((m) => m.text)), sorted(['Python answers the SDK group', 'hello from the SDK group']));
  const history = await sdk.call('messageList', { chat_dialog_id: dialog._id, mark_as_read: 0 });
  assert.deepEqual(history.items.map((m) => m.message).sort(), ['Python answers the SDK group', 'hello from the SDK group']);
});
