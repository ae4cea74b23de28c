#!/usr/bin/env python3
"""Chaos under load: kill -9 the server while clients send, restart it, check nothing acknowledged is lost.

Run through scripts/chaos.sh, which builds the binaries. Each round:
  1. four `xmpp-load` runs at once, on separate users, with stream management (XEP-0198) and a record
     of every message id: 1:1 without history, 1:1 with save_to_history=1, 1:1 to offline users, and
     groupchat with save_to_history=1 in one group dialog of its users;
  2. SIGKILL of the server at a random moment while they send;
  3. restart, timed until both ports accept connections (must be under 5 s);
  4. every user logs in again (idle `xmpp-load`) and receives what was stored offline;
  5. checks: every id the server acknowledged (`<a h/>`, minus bounced ones) was received, or is in
     the history (REST GET /chat/Message); with save_to_history=1 it must be in the history; no id
     is received twice by one client (a group message once by each member); SQLite
     `PRAGMA integrity_check` says ok.
Standard library only.
"""
import argparse
import collections
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

PASSWORD = "chaospass1"
# plain: 1:1 to the next client; history: the same with save_to_history=1; offline: 1:1 to users who
# are not connected (stored offline, delivered when they log in after the restart); group: groupchat
# with save_to_history=1 in a group dialog of the scenario's users.
SCENARIOS = ("plain", "history", "offline", "group")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Server:
    def __init__(self, binary, work):
        self.binary, self.work = binary, work
        self.http, self.xmpp = free_port(), free_port()
        self.env = dict(os.environ, CONFAB_DATA_DIR=os.path.join(work, "data"), NO_COLOR="1",
                        CONFAB_HTTP_ADDR=f"127.0.0.1:{self.http}", CONFAB_XMPP_ADDR=f"127.0.0.1:{self.xmpp}")
        self.proc = None
        self.log = open(os.path.join(work, "confab.log"), "ab")

    def run(self, *args):
        out = subprocess.run([self.binary, *args], env=self.env, check=True, capture_output=True, text=True)
        return out.stdout

    def start(self):
        """Starts the server; returns the seconds until both ports accept connections."""
        t0 = time.monotonic()
        self.proc = subprocess.Popen([self.binary, "serve"], env=self.env, stdout=self.log, stderr=self.log)
        while not (listening(self.http) and listening(self.xmpp)):
            if self.proc.poll() is not None:
                sys.exit(f"chaos: the server exited with {self.proc.returncode}; see {self.work}/confab.log")
            if time.monotonic() - t0 > 30:
                sys.exit("chaos: the server is not listening after 30 s")
            time.sleep(0.02)
        return time.monotonic() - t0

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()

    def db(self):
        return os.path.join(self.env["CONFAB_DATA_DIR"], "confab.db")

    def request(self, method, path, token=None, body=None, headers=None):
        h = {"Content-Type": "application/json", **(headers or {})}
        if token:
            h["CB-Token"] = token
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.http}{path}", data=data, method=method, headers=h)
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)


def make_users(srv, app, n, work, name):
    """Signs up n users; writes `jid-local token` lines for xmpp-load and returns [(id, token)]."""
    users = []
    for i in range(n):
        login = f"{name}{i}"
        uid = srv.request("POST", "/users.json", body={"user": {"login": login, "password": PASSWORD}},
                          headers={"CB-AuthKey": app["auth_key"]})["user"]["id"]
        s = srv.request("POST", "/session.json", body={"application_id": app["id"], "auth_key": app["auth_key"],
                                                       "user": {"login": login, "password": PASSWORD}})
        users.append((uid, s["session"]["token"]))
    path = os.path.join(work, f"{name}.txt")
    with open(path, "w") as f:
        for uid, tok in users:
            print(f"{uid}-{app['id']} {tok}", file=f)
    return users, path


def read_record(path):
    rec = collections.defaultdict(list)
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                kind, _, mid = line.strip().partition(" ")
                rec[kind].append(mid)
    return rec


def history_ids(srv, users, ids, dialog_type=3):
    """Which of `ids` are in the history of the users' dialogs of one type (read as the members)."""
    found = set()
    want = sorted(ids)
    for uid, tok in users:
        dialogs = srv.request("GET", f"/chat/Dialog.json?type={dialog_type}&limit=100", token=tok)["items"]
        for d in dialogs:
            for k in range(0, len(want), 100):
                q = urllib.parse.urlencode({"chat_dialog_id": d["_id"], "_id[in]": ",".join(want[k:k + 100]),
                                            "limit": 100, "mark_as_read": 0})
                for m in srv.request("GET", f"/chat/Message.json?{q}", token=tok)["items"]:
                    found.add(m["_id"])
    return found


def integrity(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--confab", required=True)
    ap.add_argument("--load", required=True)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--clients", type=int, default=6, help="clients per scenario")
    ap.add_argument("--messages", type=int, default=40, help="messages per client per round")
    ap.add_argument("--interval-ms", type=int, default=25)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work folder (records, logs, database)")
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    rnd = random.Random(seed)
    work = tempfile.mkdtemp(prefix="confab-chaos.")
    print(f"chaos: {a.rounds} rounds, {a.clients} clients x {a.messages} messages per scenario, seed {seed}, work {work}")

    srv = Server(a.confab, work)
    out = srv.run("app", "create", "--name", "chaos")
    app = json.loads(out[out.index("{"):])
    srv.start()
    users, files = {}, {}
    for sc in SCENARIOS + ("away",):
        users[sc], files[sc] = make_users(srv, app, a.clients, work, sc)
    group = srv.request("POST", "/chat/Dialog.json", token=users["group"][0][1],
                        body={"type": 2, "name": "chaos", "occupants_ids": [uid for uid, _ in users["group"]]})
    room = f"{app['id']}_{group['_id']}@muc.localhost"
    away_jids = os.path.join(work, "away-jids.txt")
    with open(away_jids, "w") as f:
        f.write("".join(f"{uid}-{app['id']}@localhost\n" for uid, _ in users["away"]))
    everyone = os.path.join(work, "everyone.txt")
    with open(everyone, "w") as f:
        f.write("".join(open(files[sc]).read() for sc in users))

    received = collections.Counter()  # over all rounds: an id received twice is a duplicate
    totals = collections.Counter()
    id_base = int(time.time()) & 0x7FFFFFFF
    send_secs = a.messages * a.interval_ms / 1000
    failed = False
    for r in range(1, a.rounds + 1):
        loads = {}
        for k, sc in enumerate(SCENARIOS):
            rec = os.path.join(work, f"r{r}-{sc}.rec")
            cmd = [a.load, "--port", str(srv.xmpp), "--users-file", files[sc], "--clients", str(a.clients),
                   "--concurrency", str(a.clients), "--messages", str(a.messages), "--interval-ms",
                   str(a.interval_ms), "--sm", "--record", rec, "--id-seed", str(id_base + len(SCENARIOS) * r + k),
                   "--settle-ms", "0", "--label", f"round {r} {sc}"]
            if sc in ("history", "group"):
                cmd.append("--history")
            if sc == "group":
                cmd += ["--room", room]
            if sc == "offline":
                cmd += ["--to-file", away_jids]
            loads[sc] = (subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), rec)
        # Somewhere between the logins and a little after the last send.
        time.sleep(rnd.uniform(0.05, send_secs + 0.3))
        srv.kill9()
        for p, _ in loads.values():
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        restart = srv.start()
        # Everyone logs in again: what was stored offline arrives now (and is acked).
        drain = os.path.join(work, f"r{r}-drain.rec")
        subprocess.run([a.load, "--port", str(srv.xmpp), "--users-file", everyone, "--clients",
                        str(len(users) * a.clients), "--concurrency", str(a.clients), "--messages", "0", "--sm",
                        "--record", drain, "--settle-ms", "0", "--hold-secs", "2"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        drained = read_record(drain)
        recs = {sc: read_record(rec) for sc, (_, rec) in loads.items()}
        for rec in list(recs.values()) + [drained]:
            received.update(rec["recv"])

        fig = collections.Counter(restart_ms=round(restart * 1000))
        for sc, rec in recs.items():
            acked = set(rec["acked"]) - set(rec["error"])
            fig["sent"] += len(rec["sent"])
            fig["acked"] += len(acked)
            fig["bounced"] += len(set(rec["acked"]) & set(rec["error"]))
            stored = set()
            if sc in ("history", "group") and acked:
                # One member reads the group's history; the ring's dialogs need each recipient.
                readers = users[sc][:1] if sc == "group" else users[sc]
                stored = history_ids(srv, readers, acked, 2 if sc == "group" else 3)
            lost = {m for m in acked if m not in stored and received[m] == 0}
            if sc in ("history", "group"):
                # With save_to_history=1 an ack means "stored": delivered is not enough.
                lost |= acked - stored
            # Without history, an ack means "the recipient's client acknowledged it, or it was stored
            # offline": either way it must have arrived.
            fig["lost"] += len(lost)
            # A group message reaches every member once (the sender's own copy included).
            once = a.clients if sc == "group" else 1
            fig["dup"] += sum(1 for m in set(rec["sent"]) if received[m] > once)
            fig["offline"] += len(set(drained["recv"]) & set(rec["sent"]))
        check = integrity(srv.db())
        bad = fig["lost"] or fig["dup"] or check != "ok" or restart > 5
        print(f"round {r:3}: sent {fig['sent']:4} acked {fig['acked']:4} bounced {fig['bounced']} "
              f"delivered-after-restart {fig['offline']:3} lost {fig['lost']} duplicates {fig['dup']} "
              f"integrity {check} restart {fig['restart_ms']} ms{'  <-- FAIL' if bad else ''}", flush=True)
        totals.update(fig)
        totals["max_restart_ms"] = max(totals["max_restart_ms"], fig["restart_ms"])
        failed |= bool(bad)
        if check != "ok":
            break
    srv.stop()
    print(f"total: {r} rounds, {totals['sent']} sent, {totals['acked']} acknowledged, {totals['bounced']} bounced, "
          f"{totals['offline']} delivered after a restart, lost {totals['lost']}, duplicates {totals['dup']}, "
          f"slowest restart {totals['max_restart_ms']} ms")
    if failed:
        sys.exit(f"chaos: FAILED (work folder {work})")
    if not a.keep:
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
