// One chat user driven by the real SDK in its own process (the SDK is a process-wide singleton, so two
// users talking to each other need two processes). Started with `startPeer()` from lib/peers.mjs; takes
// commands over IPC and reports the SDK's chat listeners back as events.

const CB = (await import('connectycube')).default;

function plain(value) {
  // xmpp.js elements (e.g. message.delay) have parent links; send only their attributes.
  if (value && typeof value === 'object' && 'attrs' in value && 'children' in value) {
    return { attrs: value.attrs };
  }
  return value;
}

function emit(event, ...args) {
  process.send({ event, args: args.map((a) => (a && typeof a === 'object' ? JSON.parse(JSON.stringify(a, (k, v) => plain(v))) : a)) });
}

function listen() {
  const chat = CB.chat;
  chat.onMessageListener = (userId, message) => emit('message', userId, message);
  chat.onSystemMessageListener = (message) => emit('system', message);
  chat.onMessageTypingListener = (isTyping, userId, dialogId) => emit('typing', isTyping, userId, dialogId);
  chat.onDeliveredStatusListener = (messageId, dialogId, userId) => emit('delivered', messageId, dialogId, userId);
  chat.onReadStatusListener = (messageId, dialogId, userId) => emit('read', messageId, dialogId, userId);
  chat.onMessageUpdateListener = (id, isLast, body, dialogId, userId) => emit('update', id, isLast, body, dialogId, userId);
  chat.onMessageDeleteListener = (id, dialogId, userId) => emit('delete', id, dialogId, userId);
  chat.onSentMessageCallback = (lost, sent) => emit('sent', lost, sent);
  chat.onLastUserActivityListener = (userId, seconds) => emit('lastActivity', userId, seconds);
  chat.onMessageErrorListener = (id, error) => emit('messageError', id, error);
  chat.onDisconnectedListener = () => emit('disconnected');
  chat.onReconnectListener = () => emit('reconnected');
  chat.onJoinOccupant = (dialogId, userId) => emit('joinOccupant', dialogId, userId);
  chat.onLeaveOccupant = (dialogId, userId) => emit('leaveOccupant', dialogId, userId);
  chat.onKickOccupant = (dialogId, initiatorId) => emit('kickOccupant', dialogId, initiatorId);
}

const commands = {
  init(creds, config) {
    CB.init(creds, config);
    listen();
    return true;
  },
  async signupAndLogin(login, password) {
    await CB.createSession();
    const res = await CB.users.signup({ login, password });
    const session = await CB.createSession({ login, password });
    return { userId: res.user.id, token: session.token };
  },
  async login(login, password) {
    const session = await CB.createSession({ login, password });
    return { userId: session.user_id, token: session.token };
  },
  connect: (userId, password) => CB.chat.connect({ userId, password }),
  disconnect: () => CB.chat.disconnect(),
  send: (to, message) => CB.chat.send(to, message),
  sendSystemMessage: (to, message) => CB.chat.sendSystemMessage(to, message),
  typing: (to) => CB.chat.sendIsTypingStatus(to),
  stopTyping: (to) => CB.chat.sendIsStopTypingStatus(to),
  delivered: (params) => CB.chat.sendDeliveredStatus(params),
  read: (params) => CB.chat.sendReadStatus(params),
  edit: (params) => CB.chat.editMessage(params),
  remove: (params) => CB.chat.deleteMessage(params),
  ping: () => CB.chat.ping().then(() => true),
  lastActivity: (userId) => CB.chat.getLastUserActivity(userId),
  subscribeStatus: (userId) => CB.chat.subscribeToUserLastActivityStatus(userId),
  markInactive: () => CB.chat.markInactive(),
  markActive: () => CB.chat.markActive(),
  // Group dialogs (MUC) and the chat REST calls a group test needs, as this peer's user.
  mucJoin: (dialogId) => CB.chat.muc.join(dialogId).then(() => true),
  mucLeave: (dialogId) => CB.chat.muc.leave(dialogId).then(() => true),
  mucOnline: (dialogId) => CB.chat.muc.listOnlineUsers(dialogId),
  dialogCreate: (params) => CB.chat.dialog.create(params),
  dialogUpdate: (id, params) => CB.chat.dialog.update(id, params),
  dialogDelete: (ids, params) => CB.chat.dialog.delete(ids, params),
  dialogSubscribe: (id) => CB.chat.dialog.subscribe(id),
  messageList: (params) => CB.chat.message.list(params),
  // REST calls made as this peer's user.
  listMessages: (params) => CB.chat.message.list(params),
  listDialogs: (params) => CB.chat.dialog.list(params),
  createDialog: (params) => CB.chat.dialog.create(params),
  createMessage: (params) => CB.chat.message.create(params),
  createSystem: (params) => CB.chat.message.createSystem(params),
  unreadCount: (params) => CB.chat.message.unreadCount(params),
  pushSubscribe: (params) => CB.pushnotifications.subscriptions.create(params),
  pushList: () => CB.pushnotifications.subscriptions.list(),
  pushDelete: (id) => CB.pushnotifications.subscriptions.delete(id).then(() => true),
  pushEvent: (event) => CB.pushnotifications.events.create(event),
  base64: (text) => CB.pushnotifications.base64Encode(text),
  privacyCreate: (list) => CB.chat.privacylist.create(list).then(() => true),
  privacySetDefault: (name) => CB.chat.privacylist.setAsDefault(name).then(() => true),
  privacyGetNames: () => CB.chat.privacylist.getNames(),
  privacyGetList: (name) => CB.chat.privacylist.getList(name),
  privacyDelete: (name) => CB.chat.privacylist.delete(name).then(() => true),
};

process.on('message', async ({ id, cmd, args }) => {
  try {
    const value = await commands[cmd](...args);
    process.send({ id, ok: true, value: value === undefined ? null : value });
  } catch (err) {
    let error;
    try {
      error = JSON.parse(JSON.stringify(err, Object.getOwnPropertyNames(err ?? {})));
    } catch {
      error = String(err);
    }
    process.send({ id, ok: false, error: error ?? String(err) });
  }
});
process.on('unhandledRejection', () => {
  /* the SDK rejects sends after disconnect(); irrelevant here */
});
process.send({ ready: true });
