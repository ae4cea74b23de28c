// Chat dialogs (REST) through the real connectycube@6.1.2 SDK: create (group, private, public,
// custom data), list (filters, sort, paging, count), update (name, occupants), admins,
// public subscribe/unsubscribe/occupants, notification settings, delete (for me, force, several).
//
// Dialog types follow the REST API (seed) numbering: 1 broadcast, 2 group, 3 private, 4 public.
// One server for the whole file; users take turns with the SDK session via `as(CB, user)`.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer } from '../lib/server.mjs';
import { loadSdk, sleep } from '../lib/util.mjs';
import {
  T,
  MISSING_ID,
  signupUsers,
  as,
  assertObjectId,
  assertIsoNow,
  sortedIds,
  dialogAs,
  dialogIdsAs,
  refused,
  post,
} from '../lib/chat.mjs';

const CB = await loadSdk();

let server;
let app;
/** A owns most dialogs; B..H are other users. */
let U;

before(async () => {
  server = await startServer();
  app = server.app;
  U = await signupUsers(CB, server, ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H']);
});

after(async () => {
  await server?.stop();
});

const roomJid = (id) => `${app.id}_${id}@muc.localhost`;
/** A user id from an occupants item, bare (SDK type) or wrapped as {user}. */
const occupantId = (u) => u?.id ?? u?.user?.id;

describe('chat.dialog.create', () => {
  it('group (type 2): a bare Dialog, creator added to occupants, room jid, empty last_message*', async () => {
    as(CB, U.A);
    const d = await CB.chat.dialog.create({
      type: T.GROUP,
      name: 'Friday party',
      occupants_ids: [U.B.id, U.C.id],
      description: 'lets dance the night away',
      photo: 'party.jpg',
    });
    assert.ok(!('dialog' in d) && !('items' in d), `create must answer a bare Dialog, got ${JSON.stringify(d)}`);
    assertObjectId(d._id, 'dialog._id');
    assert.equal(d.type, T.GROUP);
    assert.equal(d.name, 'Friday party');
    assert.equal(d.description, 'lets dance the night away');
    assert.equal(d.photo, 'party.jpg');
    assert.equal(d.user_id, U.A.id, 'user_id is the owner (creator)');
    assert.deepEqual(sortedIds(d.occupants_ids), sortedIds([U.A.id, U.B.id, U.C.id]), 'creator is added to occupants_ids');
    assert.deepEqual(d.admins_ids, []);
    assert.deepEqual(d.pinned_messages_ids, []);
    assert.equal(d.last_message, null);
    assert.equal(d.last_message_id, null);
    assert.equal(d.last_message_user_id, null);
    assert.equal(d.last_message_date_sent ?? null, null);
    assert.equal(d.unread_messages_count, 0);
    assert.equal(d.xmpp_room_jid, roomJid(d._id));
    assertIsoNow(d.created_at, 'created_at');
    assertIsoNow(d.updated_at, 'updated_at');
  });

  it('the creator listed in occupants_ids is not duplicated', async () => {
    as(CB, U.A);
    const d = await CB.chat.dialog.create({ type: T.GROUP, name: 'no dupes', occupants_ids: [U.A.id, U.B.id] });
    assert.deepEqual(sortedIds(d.occupants_ids), sortedIds([U.A.id, U.B.id]), JSON.stringify(d.occupants_ids));
  });

  it('two groups with the same people are two dialogs', async () => {
    as(CB, U.A);
    const d1 = await CB.chat.dialog.create({ type: T.GROUP, name: 'twin', occupants_ids: [U.B.id] });
    const d2 = await CB.chat.dialog.create({ type: T.GROUP, name: 'twin', occupants_ids: [U.B.id] });
    assert.notEqual(d1._id, d2._id);
  });

  it('private (type 3): two occupants, no room jid; the same pair gets the same dialog back, both ways', async () => {
    as(CB, U.A);
    const p = await CB.chat.dialog.create({ type: T.PRIVATE, occupants_ids: [U.D.id], name: 'ignored' });
    assertObjectId(p._id);
    assert.equal(p.type, T.PRIVATE);
    assert.deepEqual(sortedIds(p.occupants_ids), sortedIds([U.A.id, U.D.id]));
    assert.equal(p.xmpp_room_jid, null, 'private dialogs have no XMPP room');
    assert.notEqual(p.name, 'ignored', 'the seed: "name … Ignored for private chats (type 3)"');
    assert.equal(p.user_id, U.A.id);

    const again = await CB.chat.dialog.create({ type: T.PRIVATE, occupants_ids: [U.D.id] });
    assert.equal(again._id, p._id, 'creating the private dialog again returns the existing one');

    as(CB, U.D);
    const reverse = await CB.chat.dialog.create({ type: T.PRIVATE, occupants_ids: [U.A.id] });
    assert.equal(reverse._id, p._id, 'the other user creating it gets the same dialog');
  });

  it('private with a different user is a different dialog', async () => {
    as(CB, U.A);
    const p1 = await CB.chat.dialog.create({ type: T.PRIVATE, occupants_ids: [U.D.id] });
    const p2 = await CB.chat.dialog.create({ type: T.PRIVATE, occupants_ids: [U.E.id] });
    assert.notEqual(p1._id, p2._id);
    assert.deepEqual(sortedIds(p2.occupants_ids), sortedIds([U.A.id, U.E.id]));
  });

  it('public (type 4): room jid, creator is owner', async () => {
    as(CB, U.A);
    const d = await CB.chat.dialog.create({ type: T.PUBLIC, name: 'Public news', description: 'good news' });
    assertObjectId(d._id);
    assert.equal(d.type, T.PUBLIC);
    assert.equal(d.name, 'Public news');
    assert.equal(d.user_id, U.A.id);
    assert.equal(d.xmpp_room_jid, roomJid(d._id));
    assert.equal(typeof d.occupants_count, 'number', `occupants_count: ${JSON.stringify(d)}`);
  });

  it('broadcast (type 1) cannot be created by a user: 403', async () => {
    as(CB, U.A);
    await refused(CB.chat.dialog.create({ type: T.BROADCAST, name: 'News' }), 403, 'user creates broadcast');
    const ids = await dialogIdsAs(CB, U.A, { type: T.BROADCAST });
    assert.deepEqual(ids, [], 'no broadcast dialog was created');
  });

  it('a group without a name, or an unknown type, is refused (4xx)', async () => {
    as(CB, U.A);
    const e1 = await refused(CB.chat.dialog.create({ type: 9, name: 'x', occupants_ids: [U.B.id] }), [400, 422], 'type 9');
    assert.ok(e1.info?.errors, JSON.stringify(e1.info));
    await refused(CB.chat.dialog.create({ type: T.GROUP, occupants_ids: [U.B.id] }), [400, 422], 'group without name');
    await refused(CB.chat.dialog.create({ type: T.PRIVATE, occupants_ids: [] }), [400, 422], 'private without the other user');
    await refused(CB.chat.dialog.create({ type: T.PRIVATE, occupants_ids: [U.B.id, U.C.id] }), [400, 422], 'private with two others');
    await refused(CB.chat.dialog.create({ type: T.GROUP, name: 'ghosts', occupants_ids: [987654321] }), [400, 404, 422], 'unknown occupant');
  });

  it('custom parameters: data {class_name, field} come back as `data`', async () => {
    as(CB, U.A);
    const d = await CB.chat.dialog.create({
      type: T.GROUP,
      name: 'Meta red',
      occupants_ids: [U.B.id],
      data: { class_name: 'Meta', color: 'red' },
    });
    assert.equal(d.data?.class_name, 'Meta', `data: ${JSON.stringify(d.data)}`);
    assert.equal(d.data?.color, 'red');
  });

  it('custom parameters are updated with `data` (class_name kept)', async () => {
    as(CB, U.A);
    const d = await CB.chat.dialog.create({
      type: T.GROUP,
      name: 'Meta update',
      occupants_ids: [U.B.id],
      data: { class_name: 'Meta', color: 'red' },
    });
    const u = await CB.chat.dialog.update(d._id, { data: { color: 'green' } });
    assert.equal(u.data?.color, 'green', JSON.stringify(u.data));
    assert.equal(u.data?.class_name, 'Meta');
    const stored = await dialogAs(CB, U.B, d._id);
    assert.equal(stored.data?.color, 'green');
  });

  it('admins_ids at creation (SDK CreateParams.admins_ids, sent joined with ", ")', async () => {
    as(CB, U.A);
    const d = await CB.chat.dialog.create({
      type: T.GROUP,
      name: 'with admins',
      occupants_ids: [U.B.id, U.C.id],
      admins_ids: [U.B.id],
    });
    assert.deepEqual(sortedIds(d.admins_ids), [U.B.id], `admins_ids: ${JSON.stringify(d.admins_ids)}`);
    assert.deepEqual(sortedIds((await dialogAs(CB, U.C, d._id)).admins_ids), [U.B.id], 'stored');
  });

  it('extensions round-trip on create and update (SDK CreateParams/UpdateParams/Dialog.extensions)', async () => {
    as(CB, U.A);
    const d = await CB.chat.dialog.create({
      type: T.GROUP,
      name: 'with extensions',
      occupants_ids: [U.B.id],
      extensions: { location: 'Sun bar' },
    });
    assert.deepEqual(d.extensions, { location: 'Sun bar' }, `extensions: ${JSON.stringify(d)}`);
    const u = await CB.chat.dialog.update(d._id, { extensions: { location: 'Moon bar' } });
    assert.equal(u.extensions?.location, 'Moon bar');
    assert.equal((await dialogAs(CB, U.B, d._id)).extensions?.location, 'Moon bar');
  });

  it('every Dialog carries last_message_status (SDK Dialog type: sent | delivered | read | null)', async () => {
    as(CB, U.A);
    const d = await CB.chat.dialog.create({ type: T.GROUP, name: 'status', occupants_ids: [U.B.id] });
    assert.ok('last_message_status' in d, `last_message_status missing: ${JSON.stringify(d)}`);
    assert.equal(d.last_message_status, null, 'no message yet');
    await post(CB, U.A, d._id, 'status check');
    const after = await dialogAs(CB, U.A, d._id);
    assert.ok(['sent', 'delivered', 'read'].includes(after.last_message_status), `after a message: ${after.last_message_status}`);
  });
});

describe('chat.dialog.list', () => {
  let g; // group A,B,C
  let p; // private A,F
  let pub; // public by A
  let red;
  let blue;
  before(async () => {
    as(CB, U.A);
    g = await CB.chat.dialog.create({ type: T.GROUP, name: 'Listing party', occupants_ids: [U.B.id, U.C.id] });
    p = await CB.chat.dialog.create({ type: T.PRIVATE, occupants_ids: [U.F.id] });
    pub = await CB.chat.dialog.create({ type: T.PUBLIC, name: 'Listing public' });
    red = await CB.chat.dialog.create({
      type: T.GROUP,
      name: 'Listing meta red',
      occupants_ids: [U.G.id],
      data: { class_name: 'Meta', color: 'crimson' },
    });
    blue = await CB.chat.dialog.create({
      type: T.GROUP,
      name: 'Listing meta blue',
      occupants_ids: [U.G.id],
      data: { class_name: 'Meta', color: 'navy' },
    });
  });

  it('answers {total_entries, skip, limit, items} with each dialog once', async () => {
    as(CB, U.A);
    const res = await CB.chat.dialog.list();
    assert.equal(typeof res.total_entries, 'number', JSON.stringify(res).slice(0, 300));
    assert.equal(res.skip, 0);
    assert.equal(res.limit, 100, 'default limit is 100');
    assert.ok(Array.isArray(res.items));
    assert.equal(res.total_entries, res.items.length, 'fewer than 100 dialogs: one page has them all');
    const ids = res.items.map((d) => d._id);
    assert.equal(new Set(ids).size, ids.length, 'no duplicates');
    for (const id of [g._id, p._id, pub._id, red._id, blue._id]) assert.ok(ids.includes(id), `A's list lacks ${id}`);
    for (const d of res.items) {
      assertObjectId(d._id);
      assert.equal(typeof d.unread_messages_count, 'number', `unread_messages_count of ${d._id}`);
    }
  });

  it("lists only the user's own dialogs", async () => {
    const cIds = await dialogIdsAs(CB, U.C, { limit: 100 });
    assert.ok(cIds.includes(g._id), 'C is in the group');
    for (const id of [p._id, red._id, blue._id]) assert.ok(!cIds.includes(id), `C must not see ${id}`);
    const hIds = await dialogIdsAs(CB, U.H);
    for (const id of [g._id, p._id, red._id]) assert.ok(!hIds.includes(id), `H must not see ${id}`);
  });

  it('filters by type[in]', async () => {
    as(CB, U.A);
    const res = await CB.chat.dialog.list({ type: { in: [T.GROUP, T.PRIVATE] }, limit: 100 });
    assert.ok(res.items.length > 0);
    for (const d of res.items) assert.ok([T.GROUP, T.PRIVATE].includes(d.type), `type ${d.type} in a type[in]=2,3 list`);
    const ids = res.items.map((d) => d._id);
    assert.ok(ids.includes(g._id) && ids.includes(p._id));
    assert.ok(!ids.includes(pub._id), 'the public dialog is filtered out');

    const only4 = await CB.chat.dialog.list({ type: T.PUBLIC });
    assert.ok(only4.items.every((d) => d.type === T.PUBLIC));
    assert.ok(only4.items.some((d) => d._id === pub._id));
  });

  it('filters by name[ctn] and by _id', async () => {
    as(CB, U.A);
    const res = await CB.chat.dialog.list({ name: { ctn: 'Listing meta' } });
    assert.deepEqual(res.items.map((d) => d._id).sort(), [red._id, blue._id].sort());
    assert.equal(res.total_entries, 2);

    const one = await CB.chat.dialog.list({ _id: g._id });
    assert.equal(one.total_entries, 1);
    assert.equal(one.items.length, 1);
    assert.equal(one.items[0]._id, g._id);
    assert.equal(one.items[0].name, 'Listing party');

    const two = await CB.chat.dialog.list({ _id: { in: [g._id, p._id] } });
    assert.deepEqual(two.items.map((d) => d._id).sort(), [g._id, p._id].sort());
  });

  it('filters by custom parameters: data[color]=…, both spellings', async () => {
    as(CB, U.A);
    const flat = await CB.chat.dialog.list({ 'data[color]': 'crimson' }); // sent as data%5bcolor%5d=crimson
    assert.deepEqual(flat.items.map((d) => d._id), [red._id], JSON.stringify(flat.items.map((d) => d.name)));
    assert.equal(flat.items[0].data?.color, 'crimson');
    assert.equal(flat.items[0].data?.class_name, 'Meta');
    const nested = await CB.chat.dialog.list({ data: { color: 'navy' } }); // sent as data[color]=navy
    assert.deepEqual(nested.items.map((d) => d._id), [blue._id]);
    const none = await CB.chat.dialog.list({ data: { color: 'chartreuse' } });
    assert.deepEqual(none.items, []);
    assert.equal(none.total_entries, 0);
  });

  it('count=1 answers {items: {count: N}}', async () => {
    as(CB, U.A);
    const all = await CB.chat.dialog.list({ limit: 100 });
    const res = await CB.chat.dialog.list({ count: 1 });
    assert.equal(res.items?.count, all.total_entries, `count response: ${JSON.stringify(res)}`);
    const typed = await CB.chat.dialog.list({ count: 1, type: T.PUBLIC });
    assert.equal(typed.items?.count, all.items.filter((d) => d.type === T.PUBLIC).length);
  });

  it('pages with limit and skip: pages cover every dialog exactly once', async () => {
    as(CB, U.A);
    const all = await CB.chat.dialog.list({ limit: 100 });
    const total = all.total_entries;
    assert.ok(total >= 5);
    const seen = [];
    for (let skip = 0; skip < total; skip += 2) {
      const page = await CB.chat.dialog.list({ limit: 2, skip });
      assert.equal(page.limit, 2);
      assert.equal(page.skip, skip);
      assert.equal(page.total_entries, total, 'total_entries ignores paging');
      assert.equal(page.items.length, Math.min(2, total - skip));
      seen.push(...page.items.map((d) => d._id));
    }
    assert.deepEqual([...seen].sort(), all.items.map((d) => d._id).sort());
    const past = await CB.chat.dialog.list({ limit: 2, skip: total });
    assert.deepEqual(past.items, []);
  });

  it('name[ctn] matches literally: % and _ are not wildcards', async () => {
    as(CB, U.A);
    const odd = await CB.chat.dialog.create({ type: T.GROUP, name: 'Sale 50%_off', occupants_ids: [U.H.id] });
    const pct = await CB.chat.dialog.list({ name: { ctn: '%' } });
    assert.deepEqual(pct.items.map((d) => d._id), [odd._id], JSON.stringify(pct.items.map((d) => d.name)));
    const und = await CB.chat.dialog.list({ name: { ctn: '_' } });
    assert.deepEqual(und.items.map((d) => d._id), [odd._id]);
    const mid = await CB.chat.dialog.list({ name: { ctn: 'L%g' } }); // would match "Listing" as a LIKE pattern
    assert.deepEqual(mid.items, []);
  });

  it('an oversize page is a clear client error (limit is at most 100)', async () => {
    as(CB, U.A);
    await refused(CB.chat.dialog.list({ limit: 1000 }), [400], 'limit=1000');
    const res = await CB.chat.dialog.list({ limit: 100 });
    assert.equal(res.limit, 100);
  });

  it('malformed ids and paging values are client errors, never 5xx', async () => {
    as(CB, U.A);
    await refused(CB.chat.dialog.update('not-an-id', { name: 'x' }), [400, 404, 422], 'update with a malformed id');
    await refused(CB.chat.dialog.list({ limit: 'abc' }), [400, 422], 'limit=abc');
    await refused(CB.chat.dialog.list({ skip: -5 }), [400, 422], 'skip=-5');
    await refused(CB.chat.dialog.list({ type: { in: ['x'] } }), [400, 422], 'type[in]=x');
  });

  it('sorts by last_message_date_sent (desc and asc)', async () => {
    await post(CB, U.A, p._id, 'older message');
    await sleep(1100); // date_sent has whole seconds
    await post(CB, U.A, g._id, 'newer message');
    as(CB, U.A);
    const desc = await CB.chat.dialog.list({ _id: { in: [g._id, p._id] }, sort_desc: 'last_message_date_sent' });
    assert.deepEqual(desc.items.map((d) => d._id), [g._id, p._id]);
    assert.ok(desc.items[0].last_message_date_sent > desc.items[1].last_message_date_sent);
    const asc = await CB.chat.dialog.list({ _id: { in: [g._id, p._id] }, sort_asc: 'last_message_date_sent' });
    assert.deepEqual(asc.items.map((d) => d._id), [p._id, g._id]);
  });
});

describe('chat.dialog.update', () => {
  let g;
  before(async () => {
    as(CB, U.A);
    g = await CB.chat.dialog.create({ type: T.GROUP, name: 'Crossfit', occupants_ids: [U.B.id, U.C.id] });
  });

  it('renames and adds/removes occupants in one call (push_all / pull_all)', async () => {
    as(CB, U.A);
    const d = await CB.chat.dialog.update(g._id, {
      name: 'Crossfit2',
      photo: 'gym2.jpeg',
      description: 'strong man',
      push_all: { occupants_ids: [U.D.id] },
      pull_all: { occupants_ids: [U.C.id] },
    });
    assert.equal(d._id, g._id, `update must answer the Dialog, got ${JSON.stringify(d)}`);
    assert.equal(d.name, 'Crossfit2');
    assert.equal(d.photo, 'gym2.jpeg');
    assert.equal(d.description, 'strong man');
    assert.deepEqual(sortedIds(d.occupants_ids), sortedIds([U.A.id, U.B.id, U.D.id]));
    assert.equal(d.user_id, U.A.id);
    assert.ok(Date.parse(d.updated_at) >= Date.parse(g.updated_at), 'updated_at moves forward');
  });

  it('the change is stored: the removed user no longer sees the dialog, the added one does', async () => {
    const stored = await dialogAs(CB, U.B, g._id);
    assert.equal(stored?.name, 'Crossfit2');
    assert.deepEqual(sortedIds(stored.occupants_ids), sortedIds([U.A.id, U.B.id, U.D.id]));
    assert.equal(await dialogAs(CB, U.C, g._id), undefined, 'C was pulled out');
    assert.equal((await dialogAs(CB, U.D, g._id))?._id, g._id, 'D was pushed in');
  });

  it('pushing an occupant twice keeps one entry', async () => {
    as(CB, U.A);
    const d = await CB.chat.dialog.update(g._id, { push_all: { occupants_ids: [U.D.id, U.B.id] } });
    assert.deepEqual(sortedIds(d.occupants_ids), sortedIds([U.A.id, U.B.id, U.D.id]));
  });

  it('an unknown dialog id is 404; an outsider gets 403/404 and nothing changes', async () => {
    as(CB, U.A);
    await refused(CB.chat.dialog.update(MISSING_ID, { name: 'x' }), 404, 'update missing dialog');
    as(CB, U.H);
    await refused(CB.chat.dialog.update(g._id, { name: 'hijack' }), [403, 404], 'outsider update');
    const stored = await dialogAs(CB, U.A, g._id);
    assert.equal(stored.name, 'Crossfit2');
  });
});

describe('admins: chat.dialog.addAdmins / removeAdmins', () => {
  let g;
  before(async () => {
    as(CB, U.A);
    g = await CB.chat.dialog.create({
      type: T.GROUP,
      name: 'Admins',
      occupants_ids: ['B', 'C', 'D', 'E', 'F', 'G', 'H'].map((n) => U[n].id),
    });
  });

  it('the owner adds and removes admins', async () => {
    as(CB, U.A);
    const d = await CB.chat.dialog.addAdmins(g._id, [U.B.id]);
    assert.equal(d._id, g._id, JSON.stringify(d));
    assert.deepEqual(sortedIds(d.admins_ids), [U.B.id]);
    const d2 = await CB.chat.dialog.addAdmins(g._id, [U.C.id, U.D.id]);
    assert.deepEqual(sortedIds(d2.admins_ids), sortedIds([U.B.id, U.C.id, U.D.id]));
    const d3 = await CB.chat.dialog.removeAdmins(g._id, [U.C.id]);
    assert.deepEqual(sortedIds(d3.admins_ids), sortedIds([U.B.id, U.D.id]));
    const stored = await dialogAs(CB, U.E, g._id);
    assert.deepEqual(sortedIds(stored.admins_ids), sortedIds([U.B.id, U.D.id]), 'other occupants see the admins');
  });

  it('at most 5 admins: a sixth is refused and nothing changes', async () => {
    as(CB, U.A);
    const five = await CB.chat.dialog.addAdmins(g._id, [U.C.id, U.E.id, U.F.id]);
    assert.deepEqual(sortedIds(five.admins_ids), sortedIds([U.B.id, U.C.id, U.D.id, U.E.id, U.F.id]));
    await refused(CB.chat.dialog.addAdmins(g._id, [U.G.id]), [400, 403, 422], 'sixth admin');
    const stored = await dialogAs(CB, U.A, g._id);
    assert.equal(stored.admins_ids.length, 5, `admins_ids: ${JSON.stringify(stored.admins_ids)}`);
    assert.ok(!stored.admins_ids.includes(U.G.id));
  });
});

describe('public dialogs: subscribe / unsubscribe / getPublicOccupants', () => {
  let pub;
  let g;
  before(async () => {
    as(CB, U.A);
    pub = await CB.chat.dialog.create({ type: T.PUBLIC, name: 'Open forum' });
    g = await CB.chat.dialog.create({ type: T.GROUP, name: 'closed', occupants_ids: [U.B.id] });
  });

  it('the seed counts the creator: a new public dialog has occupants_count 1', () => {
    // Seed example: owner 28926 creates it, one subscribe later occupants_count is 2.
    assert.equal(pub.occupants_count, 1, JSON.stringify(pub));
  });

  it('subscribe answers the Dialog with occupants_count + 1 and the dialog shows up in the list', async () => {
    assert.equal(await dialogAs(CB, U.B, pub._id), undefined, 'not listed before subscribing');
    as(CB, U.B);
    const d = await CB.chat.dialog.subscribe(pub._id);
    assert.equal(d._id, pub._id, `subscribe must answer the Dialog, got ${JSON.stringify(d)}`);
    assert.equal(d.type, T.PUBLIC);
    assert.equal(d.occupants_count, pub.occupants_count + 1);
    const listed = await dialogAs(CB, U.B, pub._id);
    assert.equal(listed?._id, pub._id, 'a subscriber lists the public dialog');
    assert.equal(listed.occupants_count, pub.occupants_count + 1);

    as(CB, U.C);
    const d2 = await CB.chat.dialog.subscribeToPublic(pub._id);
    assert.equal(d2.occupants_count, pub.occupants_count + 2);
  });

  it('subscribing twice does not count twice', async () => {
    as(CB, U.B);
    const d = await CB.chat.dialog.subscribe(pub._id);
    assert.equal(d.occupants_count, pub.occupants_count + 2);
  });

  it('getPublicOccupants lists the subscribers', async () => {
    as(CB, U.A);
    const res = await CB.chat.dialog.getPublicOccupants(pub._id);
    assert.ok(Array.isArray(res?.items), `{items:[User]} expected, got ${JSON.stringify(res)}`);
    const ids = res.items.map(occupantId);
    assert.ok(ids.includes(U.B.id) && ids.includes(U.C.id), `occupants: ${JSON.stringify(ids)}`);
    assert.ok(!JSON.stringify(res).includes('password'), 'no password fields');

    const page = await CB.chat.dialog.getPublicOccupants(pub._id, { limit: 1, skip: 0 });
    assert.equal(page.items.length, 1, 'limit is honoured');
  });

  // The JS SDK's type says bare users, but ConnectyCube's own Flutter SDK reads `item.user`
  // from the cloud's answer; apps written against the cloud expect the wrapped form.
  it('getPublicOccupants items are {user: User}, as the cloud answers', async () => {
    as(CB, U.A);
    const res = await CB.chat.dialog.getPublicOccupants(pub._id);
    for (const item of res.items) {
      assert.equal(typeof item.user?.id, 'number', `items must be {user}, got ${JSON.stringify(item)}`);
    }
    const b = res.items.find((u) => u.user.id === U.B.id);
    assert.equal(b?.user.login, U.B.login);
  });

  it('unsubscribe (TEXT) takes the user out: count back down, no longer listed', async () => {
    as(CB, U.C);
    const out = await CB.chat.dialog.unsubscribe(pub._id);
    assert.equal(typeof out, 'string', 'unsubscribe is a TEXT call');
    assert.equal(await dialogAs(CB, U.C, pub._id), undefined);
    const owner = await dialogAs(CB, U.A, pub._id);
    assert.equal(owner.occupants_count, pub.occupants_count + 1);
    as(CB, U.A);
    const occ = await CB.chat.dialog.getPublicOccupants(pub._id);
    assert.ok(!occ.items.some((u) => occupantId(u) === U.C.id), 'C is no longer an occupant');
    assert.ok(occ.items.some((u) => occupantId(u) === U.B.id), 'B still is');
  });

  it('subscribe to a group dialog is refused', async () => {
    as(CB, U.H);
    await refused(CB.chat.dialog.subscribe(g._id), [400, 403, 404, 422], 'subscribe to a group');
    assert.equal(await dialogAs(CB, U.H, g._id), undefined);
  });

  it('subscribe to a missing dialog is 404', async () => {
    as(CB, U.H);
    await refused(CB.chat.dialog.subscribe(MISSING_ID), 404, 'subscribe to missing');
  });
});

describe('notification settings', () => {
  let g;
  before(async () => {
    as(CB, U.A);
    g = await CB.chat.dialog.create({ type: T.GROUP, name: 'Noisy', occupants_ids: [U.B.id] });
  });

  it('are on by default, per user, and can be switched off and on', async () => {
    as(CB, U.B);
    const def = await CB.chat.dialog.getNotificationsSettings(g._id);
    assert.equal(Number(def?.notifications?.enabled), 1, JSON.stringify(def));

    const off = await CB.chat.dialog.updateNotificationsSettings(g._id, false);
    assert.equal(Number(off?.notifications?.enabled), 0, JSON.stringify(off));
    const now = await CB.chat.dialog.getNotificationsSettings(g._id);
    assert.equal(Number(now.notifications.enabled), 0, 'stored');

    as(CB, U.A);
    const a = await CB.chat.dialog.getNotificationsSettings(g._id);
    assert.equal(Number(a.notifications.enabled), 1, "B's setting does not touch A's");

    as(CB, U.B);
    const on = await CB.chat.dialog.updateNotificationsSettings(g._id, true);
    assert.equal(Number(on.notifications.enabled), 1);
    assert.equal(Number((await CB.chat.dialog.getNotificationsSettings(g._id)).notifications.enabled), 1);
  });

  it('an outsider cannot read or change them', async () => {
    as(CB, U.H);
    await refused(CB.chat.dialog.getNotificationsSettings(g._id), [403, 404], 'outsider get notifications');
    await refused(CB.chat.dialog.updateNotificationsSettings(g._id, false), [403, 404], 'outsider set notifications');
  });
});

describe('chat.dialog.delete', () => {
  it('delete(id) (TEXT) removes it for the current user only', async () => {
    as(CB, U.A);
    const g = await CB.chat.dialog.create({ type: T.GROUP, name: 'Leave me', occupants_ids: [U.B.id, U.C.id] });
    as(CB, U.B);
    const out = await CB.chat.dialog.delete(g._id);
    assert.equal(typeof out, 'string', 'single delete is a TEXT call');
    assert.equal(await dialogAs(CB, U.B, g._id), undefined, 'gone for B');
    assert.equal((await dialogAs(CB, U.A, g._id))?._id, g._id, 'still there for A');
    assert.equal((await dialogAs(CB, U.C, g._id))?._id, g._id, 'still there for C');
    as(CB, U.B);
    await refused(CB.chat.message.create({ chat_dialog_id: g._id, message: 'ghost' }), [403, 404], 'post after leaving');
    await refused(CB.chat.message.list({ chat_dialog_id: g._id }), [403, 404], 'read after leaving');
  });

  it('a private dialog deleted for me comes back with the next message', async () => {
    as(CB, U.G);
    const p = await CB.chat.dialog.create({ type: T.PRIVATE, occupants_ids: [U.H.id] });
    as(CB, U.H);
    await CB.chat.dialog.delete(p._id);
    assert.equal(await dialogAs(CB, U.H, p._id), undefined);
    await post(CB, U.G, p._id, 'are you there?');
    const back = await dialogAs(CB, U.H, p._id);
    assert.equal(back?._id, p._id, 'listed again');
    assert.equal(back.unread_messages_count, 1);
    assert.equal(back.last_message, 'are you there?');
  });

  it('delete(id, {force:1}) by the owner removes it for everyone', async () => {
    as(CB, U.A);
    const g = await CB.chat.dialog.create({ type: T.GROUP, name: 'Doomed', occupants_ids: [U.B.id] });
    await post(CB, U.A, g._id, 'last words');
    as(CB, U.A);
    await CB.chat.dialog.delete(g._id, { force: 1 });
    assert.equal(await dialogAs(CB, U.A, g._id), undefined);
    assert.equal(await dialogAs(CB, U.B, g._id), undefined);
    as(CB, U.B);
    await refused(CB.chat.message.list({ chat_dialog_id: g._id }), [403, 404], 'messages of a force-deleted dialog');
  });

  it('delete([ids], {force:1}) answers JSON {SuccessfullyDeleted, NotFound, WrongPermissions}', async () => {
    as(CB, U.A);
    const mine1 = await CB.chat.dialog.create({ type: T.GROUP, name: 'mine 1', occupants_ids: [U.B.id] });
    const mine2 = await CB.chat.dialog.create({ type: T.GROUP, name: 'mine 2', occupants_ids: [U.B.id] });
    as(CB, U.B);
    const theirs = await CB.chat.dialog.create({ type: T.GROUP, name: 'theirs', occupants_ids: [U.A.id] });

    as(CB, U.A);
    const res = await CB.chat.dialog.delete([mine1._id, mine2._id, theirs._id, MISSING_ID], { force: 1 });
    assert.equal(typeof res, 'object', `several ids: a JSON answer, got ${JSON.stringify(res)}`);
    assert.deepEqual([...res.SuccessfullyDeleted.ids].sort(), [mine1._id, mine2._id].sort(), JSON.stringify(res));
    assert.deepEqual(res.NotFound.ids, [MISSING_ID]);
    assert.deepEqual(res.WrongPermissions.ids, [theirs._id]);

    assert.equal(await dialogAs(CB, U.B, mine1._id), undefined, 'force-deleted for B too');
    assert.equal(await dialogAs(CB, U.B, mine2._id), undefined);
    assert.equal((await dialogAs(CB, U.B, theirs._id))?._id, theirs._id, "B's dialog is untouched");
    assert.equal((await dialogAs(CB, U.A, theirs._id))?._id, theirs._id, 'and A still has it');
  });

  it('delete([ids]) without force hides them for me; the rest keep them', async () => {
    as(CB, U.A);
    const d1 = await CB.chat.dialog.create({ type: T.GROUP, name: 'hide 1', occupants_ids: [U.B.id] });
    const d2 = await CB.chat.dialog.create({ type: T.PRIVATE, occupants_ids: [U.H.id] });
    const res = await CB.chat.dialog.delete([d1._id, d2._id]);
    assert.deepEqual([...res.SuccessfullyDeleted.ids].sort(), [d1._id, d2._id].sort(), JSON.stringify(res));
    assert.deepEqual(res.NotFound.ids, []);
    assert.deepEqual(res.WrongPermissions.ids, []);
    const aIds = await dialogIdsAs(CB, U.A);
    assert.ok(!aIds.includes(d1._id) && !aIds.includes(d2._id));
    assert.equal((await dialogAs(CB, U.B, d1._id))?._id, d1._id);
    assert.equal((await dialogAs(CB, U.H, d2._id))?._id, d2._id);
  });

  it('deleting a dialog one is not in is refused or reported', async () => {
    as(CB, U.A);
    const g = await CB.chat.dialog.create({ type: T.GROUP, name: 'not yours', occupants_ids: [U.B.id] });
    as(CB, U.H);
    const res = await CB.chat.dialog.delete([g._id, MISSING_ID]).catch((e) => e);
    if (res && 'code' in res) {
      assert.ok([403, 404].includes(res.code), JSON.stringify(res));
    } else {
      assert.ok(!res.SuccessfullyDeleted.ids.includes(g._id), `an outsider must not delete: ${JSON.stringify(res)}`);
    }
    assert.equal((await dialogAs(CB, U.A, g._id))?._id, g._id, 'still there');
  });
});
