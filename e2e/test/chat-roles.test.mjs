// The roles-and-privileges table of the chat API, driven through the real connectycube@6.1.2 SDK.
//
//   group:     regular member  — post, delete own messages (also for everyone), add users, rename
//              admin           — + pin, delete anyone's messages for everyone
//              owner           — + remove users (seed 002: "Only group chat owner can remove other
//                                users"), manage admins (max 5), delete the dialog for everyone
//   private:   two regular users; no rename, no new occupants, no pins
//   public:    subscribers post; admins/owner rename and pin
//   broadcast: only owner/admins post; every user of the app reads it
//
// Every forbidden action must answer 403 and change nothing; each test re-reads to prove it.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer } from '../lib/server.mjs';
import { loadSdk } from '../lib/util.mjs';
import {
  T,
  MISSING_ID,
  signupUsers,
  as,
  sortedIds,
  dialogAs,
  dialogIdsAs,
  messagesAs,
  refused,
  post,
  adminFetch,
} from '../lib/chat.mjs';

const CB = await loadSdk();

let server;
let app;
/** Owner, Admin, Reg (regular), Reg2, New (added later), Out (outsider). */
let U;

before(async () => {
  server = await startServer();
  app = server.app;
  U = await signupUsers(CB, server, ['Owner', 'Admin', 'Reg', 'Reg2', 'New', 'Out']);
});

after(async () => {
  await server?.stop();
});

describe('group dialog (type 2)', () => {
  let g;
  let ownerMsg;
  let regMsg;

  before(async () => {
    as(CB, U.Owner);
    g = await CB.chat.dialog.create({
      type: T.GROUP,
      name: 'Roles',
      occupants_ids: [U.Admin.id, U.Reg.id, U.Reg2.id],
    });
    const d = await CB.chat.dialog.addAdmins(g._id, [U.Admin.id]);
    assert.deepEqual(sortedIds(d.admins_ids), [U.Admin.id]);
    ownerMsg = await post(CB, U.Owner, g._id, 'owner says hi');
    regMsg = await post(CB, U.Reg, g._id, 'regular says hi');
  });

  it('a regular member adds users', async () => {
    as(CB, U.Reg);
    const d = await CB.chat.dialog.update(g._id, { push_all: { occupants_ids: [U.New.id] } });
    assert.ok(d.occupants_ids.includes(U.New.id), JSON.stringify(d.occupants_ids));
    assert.equal((await dialogAs(CB, U.New, g._id))?._id, g._id, 'the new user sees the dialog');
  });

  it('a regular member renames and changes photo/description', async () => {
    as(CB, U.Reg);
    const d = await CB.chat.dialog.update(g._id, { name: 'Renamed by Reg', description: 'd', photo: 'p.png' });
    assert.equal(d.name, 'Renamed by Reg');
    const stored = await dialogAs(CB, U.Owner, g._id);
    assert.equal(stored.name, 'Renamed by Reg');
    assert.equal(stored.description, 'd');
    assert.equal(stored.photo, 'p.png');
  });

  it('a regular member cannot remove other users: 403, occupants unchanged', async () => {
    as(CB, U.Reg);
    await refused(CB.chat.dialog.update(g._id, { pull_all: { occupants_ids: [U.Reg2.id] } }), 403, 'regular removes a user');
    const stored = await dialogAs(CB, U.Owner, g._id);
    assert.ok(stored.occupants_ids.includes(U.Reg2.id));
    assert.equal((await dialogAs(CB, U.Reg2, g._id))?._id, g._id);
  });

  it('a regular member cannot pin: 403, pins unchanged', async () => {
    as(CB, U.Reg);
    await refused(
      CB.chat.dialog.update(g._id, { push_all: { pinned_messages_ids: [ownerMsg._id] } }),
      403,
      'regular pins'
    );
    const stored = await dialogAs(CB, U.Owner, g._id);
    assert.deepEqual(stored.pinned_messages_ids ?? [], []);
  });

  it('a forbidden part makes the whole update fail: the rename in it is not applied', async () => {
    as(CB, U.Reg);
    await refused(
      CB.chat.dialog.update(g._id, { name: 'sneaky', push_all: { pinned_messages_ids: [ownerMsg._id] } }),
      403,
      'rename + pin by regular'
    );
    assert.equal((await dialogAs(CB, U.Owner, g._id)).name, 'Renamed by Reg');
  });

  it('an admin pins and unpins; the owner pins too', async () => {
    as(CB, U.Admin);
    const d = await CB.chat.dialog.update(g._id, { push_all: { pinned_messages_ids: [ownerMsg._id] } });
    assert.deepEqual(d.pinned_messages_ids, [ownerMsg._id]);
    assert.deepEqual((await dialogAs(CB, U.Reg, g._id)).pinned_messages_ids, [ownerMsg._id], 'everyone sees the pin');
    as(CB, U.Owner);
    const d2 = await CB.chat.dialog.update(g._id, { push_all: { pinned_messages_ids: [regMsg._id] } });
    assert.deepEqual([...d2.pinned_messages_ids].sort(), [ownerMsg._id, regMsg._id].sort());
    as(CB, U.Admin);
    const d3 = await CB.chat.dialog.update(g._id, { pull_all: { pinned_messages_ids: [regMsg._id] } });
    assert.deepEqual(d3.pinned_messages_ids, [ownerMsg._id]);
  });

  it('a regular member cannot unpin either', async () => {
    as(CB, U.Reg);
    await refused(
      CB.chat.dialog.update(g._id, { pull_all: { pinned_messages_ids: [ownerMsg._id] } }),
      403,
      'regular unpins'
    );
    assert.deepEqual((await dialogAs(CB, U.Owner, g._id)).pinned_messages_ids, [ownerMsg._id]);
  });

  it('only the owner manages admins: a regular member and an admin get 403', async () => {
    as(CB, U.Reg);
    await refused(CB.chat.dialog.addAdmins(g._id, [U.Reg.id]), 403, 'regular adds admin');
    await refused(CB.chat.dialog.removeAdmins(g._id, [U.Admin.id]), 403, 'regular removes admin');
    as(CB, U.Admin);
    await refused(CB.chat.dialog.addAdmins(g._id, [U.Reg2.id]), 403, 'admin adds admin');
    await refused(CB.chat.dialog.update(g._id, { push_all: { admins_ids: [U.Reg2.id] } }), 403, 'admin adds admin via update');
    const stored = await dialogAs(CB, U.Owner, g._id);
    assert.deepEqual(sortedIds(stored.admins_ids), [U.Admin.id]);
  });

  it('a regular member deletes a message of someone else only for himself', async () => {
    as(CB, U.Reg);
    await refused(CB.chat.message.delete([ownerMsg._id], { force: 1 }), 403, 'regular force-deletes owner message');
    assert.ok((await messagesAs(CB, U.Reg2, g._id)).some((m) => m._id === ownerMsg._id), 'still there for Reg2');
    assert.ok((await messagesAs(CB, U.Reg, g._id)).some((m) => m._id === ownerMsg._id), 'still there for Reg');

    as(CB, U.Reg);
    await CB.chat.message.delete([ownerMsg._id]);
    assert.ok(!(await messagesAs(CB, U.Reg, g._id)).some((m) => m._id === ownerMsg._id), 'hidden for Reg');
    assert.ok((await messagesAs(CB, U.Owner, g._id)).some((m) => m._id === ownerMsg._id), 'kept for Owner');
  });

  it("an admin deletes anyone's message for everyone", async () => {
    const victim = await post(CB, U.Reg2, g._id, 'to be moderated');
    as(CB, U.Admin);
    await CB.chat.message.delete([victim._id], { force: 1 });
    for (const who of [U.Owner, U.Reg2, U.Reg]) {
      assert.ok(!(await messagesAs(CB, who, g._id)).some((m) => m._id === victim._id), `gone for ${who.full_name}`);
    }
  });

  it('only messages of this dialog can be pinned', async () => {
    as(CB, U.Owner);
    const other = await CB.chat.dialog.create({ type: T.GROUP, name: 'elsewhere', occupants_ids: [U.Admin.id] });
    const foreign = await post(CB, U.Owner, other._id, 'not in Roles');
    as(CB, U.Admin);
    await refused(
      CB.chat.dialog.update(g._id, { push_all: { pinned_messages_ids: [foreign._id] } }),
      [400, 404, 422],
      'pin a message of another dialog'
    );
    assert.deepEqual((await dialogAs(CB, U.Owner, g._id)).pinned_messages_ids, [ownerMsg._id]);
  });

  it('an admin cannot remove the owner', async () => {
    as(CB, U.Admin);
    await refused(CB.chat.dialog.update(g._id, { pull_all: { occupants_ids: [U.Owner.id] } }), 403, 'admin removes owner');
    assert.ok((await dialogAs(CB, U.Owner, g._id)).occupants_ids.includes(U.Owner.id));
  });

  it('a regular member may remove himself (leave)', async () => {
    as(CB, U.Owner);
    await CB.chat.dialog.update(g._id, { push_all: { occupants_ids: [U.Out.id] } });
    as(CB, U.Out);
    const d = await CB.chat.dialog.update(g._id, { pull_all: { occupants_ids: [U.Out.id] } });
    assert.ok(!d.occupants_ids.includes(U.Out.id), JSON.stringify(d.occupants_ids));
    assert.equal(await dialogAs(CB, U.Out, g._id), undefined);
  });

  it('an admin cannot remove users; the owner can', async () => {
    as(CB, U.Admin);
    await refused(CB.chat.dialog.update(g._id, { pull_all: { occupants_ids: [U.New.id] } }), 403, 'admin removes a user');
    assert.ok((await dialogAs(CB, U.New, g._id))?.occupants_ids.includes(U.New.id), 'still an occupant');
    as(CB, U.Owner);
    const d = await CB.chat.dialog.update(g._id, { pull_all: { occupants_ids: [U.New.id] } });
    assert.ok(!d.occupants_ids.includes(U.New.id));
    assert.equal(await dialogAs(CB, U.New, g._id), undefined);
  });

  it('an admin cannot delete the dialog for everyone (WrongPermissions; nothing changes)', async () => {
    as(CB, U.Admin);
    const res = await CB.chat.dialog.delete([g._id, MISSING_ID], { force: 1 });
    assert.ok(res.WrongPermissions?.ids?.includes(g._id), JSON.stringify(res));
    assert.ok(!res.SuccessfullyDeleted.ids.includes(g._id));
    assert.equal((await dialogAs(CB, U.Owner, g._id))?._id, g._id);
    assert.equal((await dialogAs(CB, U.Reg, g._id))?._id, g._id);
  });

  it('single-id force delete by an admin is refused too (403), and nothing changes', async () => {
    as(CB, U.Admin);
    const res = await CB.chat.dialog.delete(g._id, { force: 1 }).catch((e) => e);
    if (res && typeof res === 'object' && 'code' in res) {
      assert.equal(res.code, 403, JSON.stringify(res));
    } else {
      // A 2xx TEXT answer must at least not claim success.
      const body = JSON.parse(res);
      assert.ok(body.WrongPermissions?.ids?.includes(g._id), `single force delete by admin answered ${res}`);
    }
    assert.equal((await dialogAs(CB, U.Owner, g._id))?._id, g._id);
    assert.equal((await dialogAs(CB, U.Reg2, g._id))?._id, g._id);
  });

  it('an outsider can do nothing', async () => {
    as(CB, U.Out);
    await refused(CB.chat.message.list({ chat_dialog_id: g._id }), [403, 404], 'outsider lists');
    await refused(CB.chat.message.create({ chat_dialog_id: g._id, message: 'x' }), [403, 404], 'outsider posts');
    await refused(CB.chat.dialog.update(g._id, { push_all: { occupants_ids: [U.Out.id] } }), [403, 404], 'outsider adds self');
    await refused(CB.chat.dialog.addAdmins(g._id, [U.Out.id]), [403, 404], 'outsider adds admin');
    assert.ok(!(await dialogIdsAs(CB, U.Out)).includes(g._id));
    const stored = await dialogAs(CB, U.Owner, g._id);
    assert.ok(!stored.occupants_ids.includes(U.Out.id));
    assert.deepEqual(sortedIds(stored.admins_ids), [U.Admin.id]);
  });

  it('the owner removes an admin, who is then a regular member', async () => {
    as(CB, U.Owner);
    const d = await CB.chat.dialog.removeAdmins(g._id, [U.Admin.id]);
    assert.deepEqual(d.admins_ids, []);
    as(CB, U.Admin);
    await refused(
      CB.chat.dialog.update(g._id, { pull_all: { pinned_messages_ids: [ownerMsg._id] } }),
      403,
      'former admin unpins'
    );
    assert.deepEqual((await dialogAs(CB, U.Owner, g._id)).pinned_messages_ids, [ownerMsg._id]);
  });

  it('the owner deletes the dialog for everyone', async () => {
    as(CB, U.Owner);
    await CB.chat.dialog.delete(g._id, { force: 1 });
    for (const who of [U.Owner, U.Admin, U.Reg, U.Reg2]) {
      assert.equal(await dialogAs(CB, who, g._id), undefined, `gone for ${who.full_name}`);
    }
  });
});

describe('private dialog (type 3)', () => {
  let p;
  let m;
  before(async () => {
    as(CB, U.Reg);
    p = await CB.chat.dialog.create({ type: T.PRIVATE, occupants_ids: [U.Reg2.id] });
    m = await post(CB, U.Reg2, p._id, 'private hello');
  });

  it('cannot be renamed, not even by its creator: 403', async () => {
    const before = await dialogAs(CB, U.Reg, p._id);
    as(CB, U.Reg);
    await refused(CB.chat.dialog.update(p._id, { name: 'our chat' }), 403, 'rename private');
    as(CB, U.Reg2);
    await refused(CB.chat.dialog.update(p._id, { name: 'our chat' }), 403, 'rename private by the other user');
    assert.equal((await dialogAs(CB, U.Reg, p._id)).name, before.name);
  });

  it('takes no more occupants, no pins, no admins: 403', async () => {
    as(CB, U.Reg);
    await refused(CB.chat.dialog.update(p._id, { push_all: { occupants_ids: [U.New.id] } }), 403, 'add to private');
    await refused(CB.chat.dialog.update(p._id, { push_all: { pinned_messages_ids: [m._id] } }), 403, 'pin in private');
    await refused(CB.chat.dialog.addAdmins(p._id, [U.Reg2.id]), 403, 'admin in private');
    const stored = await dialogAs(CB, U.Reg, p._id);
    assert.deepEqual(sortedIds(stored.occupants_ids), sortedIds([U.Reg.id, U.Reg2.id]));
    assert.deepEqual(stored.pinned_messages_ids ?? [], []);
    assert.deepEqual(stored.admins_ids ?? [], []);
    assert.equal(await dialogAs(CB, U.New, p._id), undefined);
  });

  it("the other user's message can be hidden for me but not deleted for both", async () => {
    as(CB, U.Reg);
    await refused(CB.chat.message.delete([m._id], { force: 1 }), 403, "force-delete other's private message");
    assert.ok((await messagesAs(CB, U.Reg2, p._id)).some((x) => x._id === m._id));
    as(CB, U.Reg);
    await CB.chat.message.delete([m._id]);
    assert.ok(!(await messagesAs(CB, U.Reg, p._id)).some((x) => x._id === m._id));
    assert.ok((await messagesAs(CB, U.Reg2, p._id)).some((x) => x._id === m._id));
  });

  it('either user deletes the dialog for himself only', async () => {
    as(CB, U.Reg2);
    await CB.chat.dialog.delete(p._id);
    assert.equal(await dialogAs(CB, U.Reg2, p._id), undefined);
    assert.equal((await dialogAs(CB, U.Reg, p._id))?._id, p._id);
  });
});

describe('public dialog (type 4)', () => {
  let pub;
  before(async () => {
    as(CB, U.Owner);
    pub = await CB.chat.dialog.create({ type: T.PUBLIC, name: 'Town square' });
    as(CB, U.Reg);
    await CB.chat.dialog.subscribe(pub._id);
    as(CB, U.Admin);
    await CB.chat.dialog.subscribe(pub._id);
    as(CB, U.Owner);
    await CB.chat.dialog.addAdmins(pub._id, [U.Admin.id]);
  });

  it('a subscriber posts and reads', async () => {
    const m = await post(CB, U.Reg, pub._id, 'hello square');
    assert.ok((await messagesAs(CB, U.Owner, pub._id)).some((x) => x._id === m._id));
  });

  it('a regular subscriber cannot rename it (403); an admin can', async () => {
    as(CB, U.Reg);
    await refused(CB.chat.dialog.update(pub._id, { name: 'My square' }), 403, 'subscriber renames public');
    assert.equal((await dialogAs(CB, U.Owner, pub._id)).name, 'Town square');
    as(CB, U.Admin);
    const d = await CB.chat.dialog.update(pub._id, { name: 'Main square' });
    assert.equal(d.name, 'Main square');
  });

  it('a regular subscriber cannot delete it for everyone', async () => {
    as(CB, U.Reg);
    const res = await CB.chat.dialog.delete([pub._id, MISSING_ID], { force: 1 });
    assert.ok(res.WrongPermissions?.ids?.includes(pub._id), JSON.stringify(res));
    assert.equal((await dialogAs(CB, U.Owner, pub._id))?._id, pub._id);
  });
});

describe('broadcast dialog (type 1), created with the admin API', () => {
  let b;
  before(async () => {
    const res = await adminFetch(server, app.api_key, 'POST', '/admin/chat', {
      body: { type: T.BROADCAST, name: 'Announcements', user_id: U.Owner.id },
    });
    assert.ok(res.status === 200 || res.status === 201, `POST /admin/chat: ${res.status} ${res.text}`);
    b = res.json;
    assert.equal(b.type, T.BROADCAST, res.text);
    assert.equal(b.user_id, U.Owner.id);
    as(CB, U.Owner);
    const d = await CB.chat.dialog.addAdmins(b._id, [U.Admin.id]);
    assert.deepEqual(sortedIds(d.admins_ids), [U.Admin.id]);
  });

  it('every user of the app lists it', async () => {
    for (const who of [U.Owner, U.Reg, U.Out]) {
      const d = await dialogAs(CB, who, b._id);
      assert.equal(d?._id, b._id, `${who.full_name} must see the broadcast dialog`);
      assert.equal(d.type, T.BROADCAST);
      assert.equal(d.name, 'Announcements');
    }
  });

  it('the owner and admins post; everybody reads', async () => {
    const m1 = await post(CB, U.Owner, b._id, 'from the owner');
    const m2 = await post(CB, U.Admin, b._id, 'from an admin');
    const seen = (await messagesAs(CB, U.Out, b._id)).map((x) => x._id);
    assert.deepEqual(seen, [m1._id, m2._id]);
  });

  it('a regular user cannot post: 403 and nothing is stored', async () => {
    as(CB, U.Reg);
    await refused(CB.chat.message.create({ chat_dialog_id: b._id, message: 'me too' }), 403, 'regular posts to broadcast');
    const texts = (await messagesAs(CB, U.Owner, b._id)).map((x) => x.message);
    assert.ok(!texts.includes('me too'));
  });

  it('a regular user cannot rename it or add admins', async () => {
    as(CB, U.Reg);
    await refused(CB.chat.dialog.update(b._id, { name: 'mine' }), 403, 'regular renames broadcast');
    await refused(CB.chat.dialog.addAdmins(b._id, [U.Reg.id]), 403, 'regular adds admin to broadcast');
    const d = await dialogAs(CB, U.Owner, b._id);
    assert.equal(d.name, 'Announcements');
    assert.deepEqual(sortedIds(d.admins_ids), [U.Admin.id]);
  });

  it('a regular user deletes it for himself only', async () => {
    as(CB, U.Reg);
    await CB.chat.dialog.delete(b._id);
    assert.equal(await dialogAs(CB, U.Reg, b._id), undefined);
    assert.equal((await dialogAs(CB, U.Out, b._id))?._id, b._id);
  });
});
