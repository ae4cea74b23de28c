#!/usr/bin/env python3
"""Full disk: the data directory on a small tmpfs, filled up while clients write.

Run through scripts/full-disk.sh (needs root, for `mount -t tmpfs`). Checked:
  - with the disk full, a REST write fails with a 5xx and an `{"errors": …}` body, and an XMPP message
    with save_to_history=1 is bounced (`<message type="error">`) or, when acknowledged, stored;
  - the server stays up, and everything acknowledged before and during stays readable;
  - once space returns, writes succeed again without a restart; `PRAGMA integrity_check` says ok.
Standard library only.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error

sys.dont_write_bytecode = True  # no __pycache__ in the clone
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chaos import Server, history_ids, integrity, make_users, read_record  # noqa: E402


def post_message(srv, token, dialog, text):
    """(status, body) of a REST message post."""
    try:
        body = srv.request("POST", "/chat/Message.json", token=token,
                           body={"chat_dialog_id": dialog, "message": text})
        return 200, body
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw


def try_request(srv, method, path, token, body=None):
    """(status, body) of any REST call, errors included."""
    try:
        return 200, srv.request(method, path, token=token, body=body)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw


def other_writes(srv, token, dialog, b, tag):
    """Writes that run their own transactions rather than the message writer's batches: a new group
    dialog (with its members) and marking a dialog read. Returns their statuses."""
    group = try_request(srv, "POST", "/chat/Dialog.json", token,
                        {"type": 2, "name": f"group {tag}", "occupants_ids": [b]})
    read = try_request(srv, "PUT", f"/chat/Message.json?chat_dialog_id={dialog}&read=1", token, {})
    return [group, read]


def fill(path):
    """Writes until the file system is full; returns the filler's size."""
    n = 0
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                n += f.write(chunk)
            except OSError:
                # The last bytes that still fit.
                for size in (4096, 512, 1):
                    try:
                        while True:
                            n += f.write(chunk[:size])
                    except OSError:
                        pass
                return n


def xmpp_load(srv, load, users_file, rec, seed, to_file=None):
    """5 messages from each of 2 clients: to each other with save_to_history=1, or to `to_file`'s offline JIDs."""
    target = ["--to-file", to_file] if to_file else ["--history"]
    subprocess.run([load, "--port", str(srv.xmpp), "--users-file", users_file, "--clients", "2", "--messages", "5",
                    "--interval-ms", "20", "--sm", "--record", rec, "--id-seed", str(seed), *target],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    return read_record(rec)


def offline_phase(srv, load, users_file, to_file, work, name, seed):
    """Messages to offline users: (acknowledged ids, bounced ids, sent count)."""
    rec = xmpp_load(srv, load, users_file, os.path.join(work, f"{name}-offline.rec"), seed, to_file)
    return set(rec["acked"]) - set(rec["error"]), set(rec["error"]), len(rec["sent"])


def main():
    confab, load = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="confab-full-disk.")
    data = os.path.join(work, "data")
    os.makedirs(data)
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", data]).returncode == 0
    except OSError:
        mounted = False
    if not mounted:
        msg = "full-disk: cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)"
        if os.environ.get("FULL_DISK_OPTIONAL") == "1":
            print(f"{msg}: SKIPPED")
            return
        sys.exit(msg)
    srv = Server(confab, work)
    failures = []

    def check(ok, what):
        print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
        if not ok:
            failures.append(what)

    try:
        out = srv.run("app", "create", "--name", "full")
        app = json.loads(out[out.index("{"):])
        srv.start()
        users, users_file = make_users(srv, app, 2, work, "full")
        (a, tok_a), (b, _) = users
        # Two users who stay offline until the end (xmpp-load needs two): messages to them go through the
        # offline queue.
        away, away_file = make_users(srv, app, 2, work, "away")
        away_jids = os.path.join(work, "away-jids.txt")
        with open(away_jids, "w") as out:
            out.write("".join(f"{uid}-{app['id']}@localhost\n" for uid, _ in away))
        dialog = srv.request("POST", "/chat/Dialog.json", token=tok_a, body={"type": 3, "occupants_ids": [b]})["_id"]
        acked = set()
        for i in range(20):
            status, body = post_message(srv, tok_a, dialog, f"before {i}")
            if status == 200:
                acked.add(body["_id"])
            else:
                check(False, f"post {i} with free space: {status}")
        rec = xmpp_load(srv, load, users_file, os.path.join(work, "before.rec"), 1)
        xmpp_acked = set(rec["acked"]) - set(rec["error"])
        check(len(xmpp_acked) == 10, f"XMPP with free space: {len(xmpp_acked)}/10 acknowledged")
        offline_acked, _, _ = offline_phase(srv, load, users_file, away_jids, work, "before", 11)
        check(len(offline_acked) == 10, f"XMPP to offline users with free space: {len(offline_acked)}/10 acknowledged")

        filler = os.path.join(data, "filler")
        size = fill(filler)
        print(f"     disk full ({size} bytes of filler)")
        statuses = []
        for i in range(2000):
            status, body = post_message(srv, tok_a, dialog, f"full {i} " + "x" * 2000)
            statuses.append(status)
            if status == 200:
                acked.add(body["_id"])
                continue
            check(status >= 500 and isinstance(body, dict) and "errors" in body,
                  f"REST write on a full disk: {status} {json.dumps(body) if isinstance(body, dict) else body!r}")
            break
        check(any(s != 200 for s in statuses), f"a REST write fails on a full disk ({len(statuses)} tried)")
        for status, body in other_writes(srv, tok_a, dialog, b, "full"):
            check(status == 200 or (status >= 500 and isinstance(body, dict) and "errors" in body),
                  f"a transaction on a full disk: {status} {body!r:.200}")
        rec = xmpp_load(srv, load, users_file, os.path.join(work, "full.rec"), 2)
        full_acked = set(rec["acked"]) - set(rec["error"])
        print(f"     XMPP on a full disk: {len(rec['sent'])} sent, {len(full_acked)} acknowledged, "
              f"{len(rec['error'])} bounced")
        check(len(full_acked) + len(set(rec["error"])) == len(rec["sent"]) == 10,
              "every XMPP message on a full disk is acknowledged or bounced")
        xmpp_acked |= full_acked
        acked_o, bounced_o, sent_o = offline_phase(srv, load, users_file, away_jids, work, "full", 12)
        print(f"     XMPP to offline users on a full disk: {sent_o} sent, {len(acked_o)} acknowledged, "
              f"{len(bounced_o)} bounced")
        check(len(acked_o) + len(bounced_o) == sent_o == 10,
              "every XMPP message to offline users on a full disk is acknowledged or bounced")
        offline_acked |= acked_o
        check(srv.proc.poll() is None, "the server is still running")

        os.remove(filler)
        recovered = False
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not recovered:
            status, body = post_message(srv, tok_a, dialog, "after")
            recovered = status == 200
            if recovered:
                acked.add(body["_id"])
            else:
                time.sleep(0.2)
        check(recovered, "REST writes succeed within 5 s once space returns")
        # A transaction that failed on the full disk must not have left its connection holding the
        # write lock: these would then wait out the busy timeout and fail.
        for status, body in other_writes(srv, tok_a, dialog, b, "after"):
            check(status == 200, f"a transaction once space returns: {status} {body!r:.200}")
        rec = xmpp_load(srv, load, users_file, os.path.join(work, "after.rec"), 3)
        after = set(rec["acked"]) - set(rec["error"])
        check(len(after) == 10, f"XMPP once space returns: {len(after)}/10 acknowledged")
        xmpp_acked |= after
        acked_o, _, _ = offline_phase(srv, load, users_file, away_jids, work, "after", 13)
        check(len(acked_o) == 10, f"XMPP to offline users once space returns: {len(acked_o)}/10 acknowledged")
        offline_acked |= acked_o
        drain = os.path.join(work, "away.rec")
        subprocess.run([load, "--port", str(srv.xmpp), "--users-file", away_file, "--clients", "2", "--messages",
                        "0", "--sm", "--record", drain, "--settle-ms", "0", "--hold-secs", "2"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        got = read_record(drain)["recv"]
        check(offline_acked <= set(got) and len(got) == len(set(got)),
              f"the offline users receive every acknowledged message once ({len(offline_acked - set(got))} missing, "
              f"{len(got) - len(set(got))} twice)")
        stored = history_ids(srv, users, acked | xmpp_acked)
        check(acked <= stored, f"every acknowledged REST message is in the history ({len(acked - stored)} missing)")
        check(xmpp_acked <= stored,
              f"every acknowledged XMPP message is in the history ({len(xmpp_acked - stored)} missing)")
        check(integrity(srv.db()) == "ok", "PRAGMA integrity_check")
    finally:
        srv.stop()
        subprocess.run(["umount", data])
    if failures:
        sys.exit(f"full-disk: {len(failures)} check(s) failed; server log in {work}/confab.log")
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
