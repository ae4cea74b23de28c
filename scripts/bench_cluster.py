#!/usr/bin/env python3
"""Scale-out benchmark: the XMPP load generator against one node on SQLite, one node on PostgreSQL,
and two and three nodes on PostgreSQL + NATS, all on this machine, in one run.

Run through scripts/bench-cluster.sh (it builds the release binaries and starts PostgreSQL). For each
setup: fresh store, N release nodes, CLIENTS users spread over the nodes (client i on node i mod N),
each message to a random other client (first contacts; with N nodes, (N-1)/N of them cross nodes),
at a fixed offered RATE, once without history and once with save_to_history=1. CPU is the sum of
every server process (the nodes, PostgreSQL's, nats-server) over the message phase.
Standard library only.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chaos import PASSWORD, Server, free_port, listening  # noqa: E402


def postgres_pids():
    pids = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/comm") as f:
                    if f.read().strip() in ("postgres", "nats-server"):
                        pids.append(int(p))
            except OSError:
                pass
    return pids


def cpu_seconds(pids):
    """utime + stime of these processes so far (those that have ended count nothing)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def fresh_database(base):
    name = f"bench_{int(time.time())}_{os.getpid()}_{len(os.listdir('/proc'))}"
    subprocess.run(["psql", base, "-q", "-c", f"CREATE DATABASE {name}"], check=True)
    url = urllib.parse.urlparse(base)
    return url._replace(path=f"/{name}").geturl()


def start_nats(work):
    port = free_port()
    binary = "/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else "nats-server"
    log = open(os.path.join(work, "nats.log"), "ab")
    proc = subprocess.Popen([binary, "-a", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    for _ in range(200):
        if listening(port):
            return proc, f"nats://127.0.0.1:{port}"
        time.sleep(0.025)
    sys.exit("bench: nats-server did not start")


def make_users(srv, app, n, work):
    users = []
    for i in range(n):
        login = f"bench{i}"
        uid = srv.request("POST", "/users.json", body={"user": {"login": login, "password": PASSWORD}},
                          headers={"CB-AuthKey": app["auth_key"]})["user"]["id"]
        s = srv.request("POST", "/session.json", body={"application_id": app["id"], "auth_key": app["auth_key"],
                                                       "user": {"login": login, "password": PASSWORD}})
        users.append(f"{uid}-{app['id']} {s['session']['token']}")
    path = os.path.join(work, "users.txt")
    with open(path, "w") as f:
        f.write("\n".join(users) + "\n")
    return path


def parse(out):
    got = re.search(r"messages\s+(\d+)/(\d+) delivered in ([\d.]+) s → (\d+) messages/s", out)
    cpu = re.search(r"server CPU\s+([\d.]+) s .* → (\d+) messages per CPU-second", out)
    lat = re.search(r"latency\s+p50 ([\d.]+) ms, p99 ([\d.]+) ms", out)
    if not (got and cpu and lat):
        sys.exit(f"bench: unexpected xmpp-load output:\n{out}")
    return {
        "delivered": int(got.group(1)), "expected": int(got.group(2)), "rate": int(got.group(4)),
        "cpu": float(cpu.group(1)), "per_cpu": int(cpu.group(2)),
        "p50": float(lat.group(1)), "p99": float(lat.group(2)),
    }


def run_setup(args, label, nodes, database):
    work = tempfile.mkdtemp(prefix=f"bench-{label}-")
    servers, nats = [], None
    try:
        env = {}
        if database:
            env["CONFAB_DATABASE_URL"] = fresh_database(database)
        if nodes > 1:
            nats, url = start_nats(work)
            env["CONFAB_NATS_URL"] = url
        for i in range(nodes):
            os.makedirs(os.path.join(work, f"n{i}"), exist_ok=True)
            srv = Server(args.confab, os.path.join(work, f"n{i}"))
            srv.env.update(env)
            srv.env.update({"CONFAB_NODE_ID": f"bench-{i}", "CONFAB_LOG": "warn"})
            servers.append(srv)
        out = servers[0].run("app", "create", "--name", "bench")
        app = json.loads(out[out.index("{"):])
        for srv in servers:
            srv.start()
        users = make_users(servers[0], app, args.clients, work)
        time.sleep(1.5)
        results = {}
        for history in (False, True):
            pids = [s.proc.pid for s in servers]
            others = pids[1:] + (postgres_pids() if (database or nats) else [])
            cmd = [args.load, "--host", "127.0.0.1", "--ports", ",".join(str(s.xmpp) for s in servers),
                   "--domain", "localhost", "--users-file", users, "--clients", str(args.clients),
                   "--messages", str(args.messages), "--rate", str(args.rate), "--random-peers",
                   "--pid", str(pids[0]), "--label", label]
            if others:
                cmd += ["--cpu-pids", ",".join(map(str, others))]
            if history:
                # Other pairs than the run without history drew: first contacts again.
                cmd += ["--history", "--seed", "2"]
            if args.timeline:
                cmd += ["--timeline"]
            if args.pause_ms:
                cmd += ["--pause-ms", str(args.pause_ms)]
            # The nodes' share of the CPU (the rest is PostgreSQL's and NATS's), over the whole
            # run of the generator: logins included, so only a rough split.
            nodes_before, all_before = cpu_seconds(pids), cpu_seconds(pids + others)
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            nodes, total = cpu_seconds(pids) - nodes_before, cpu_seconds(pids + others) - all_before
            if args.timeline:
                print(f"{label}, history={history}:\n{out}", file=sys.stderr)
            results[history] = parse(out)
            results[history]["nodes_share"] = nodes / total if total else 1.0
        return results
    finally:
        for s in servers:
            s.stop()
        if nats:
            nats.terminate()
            nats.wait()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--confab", required=True)
    p.add_argument("--load", required=True)
    p.add_argument("--clients", type=int, default=600)
    p.add_argument("--messages", type=int, default=20)
    p.add_argument("--rate", type=int, default=5000)
    p.add_argument("--setups", default="sqlite,postgres,2,3",
                   help="comma list of setups to run: sqlite, postgres, 2 and 3 (nodes on PostgreSQL + NATS)")
    p.add_argument("--pause-ms", type=int, default=0,
                   help="wait this long between the logins and the first message")
    p.add_argument("--timeline", action="store_true",
                   help="print each run's latency per half second of send time (to stderr)")
    args = p.parse_args()
    database = os.environ.get("CONFAB_TEST_DATABASE_URL")
    if not database:
        sys.exit("bench: CONFAB_TEST_DATABASE_URL is not set (scripts/bench-cluster.sh starts PostgreSQL)")
    setups = [("sqlite", "sqlite, 1 node", 1, None), ("postgres", "postgres, 1 node", 1, database),
              ("2", "postgres + nats, 2 nodes", 2, database), ("3", "postgres + nats, 3 nodes", 3, database)]
    wanted = args.setups.split(",")
    setups = [(label, nodes, db) for key, label, nodes, db in setups if key in wanted]
    rows = []
    for label, nodes, db in setups:
        r = run_setup(args, label.replace(" ", "").replace(",", "-").replace("+", ""), nodes, db)
        rows.append((label, nodes, r))
        print(f"{label}: {r}", file=sys.stderr)
    print(f"\n{args.clients} clients, {args.messages} messages each to random peers, "
          f"{args.rate} msg/s offered; CPU = all server processes\n")
    print("| setup | crossing nodes | history | delivered | msg/s | p50 / p99 ms | msgs per CPU-s | nodes' share of CPU |")
    print("|---|---|---|---|---|---|---|---|")
    for label, nodes, r in rows:
        for history in (False, True):
            x = r[history]
            cross = f"{(nodes - 1) * 100 // nodes}%"
            print(f"| {label} | {cross} | {'yes' if history else 'no'} | {x['delivered']}/{x['expected']} "
                  f"| {x['rate']} | {x['p50']:.2f} / {x['p99']:.2f} | {x['per_cpu']} | {x['nodes_share']:.0%} |")


if __name__ == "__main__":
    main()
