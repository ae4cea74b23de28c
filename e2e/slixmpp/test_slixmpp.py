"""A standard XMPP client library (slixmpp) against the real confab binary.

Logs in with STARTTLS + SASL PLAIN and the account password (accepting the self-signed
certificate), then checks: roster add and presence subscription both ways, presence broadcast
(available and unavailable), carbons (a second resource gets a <sent/> carbon), ping (XEP-0199) and
last activity (XEP-0012). Run with e2e/slixmpp/run.sh.
"""

import asyncio
import json
import logging
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

import slixmpp

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("CONFAB_BIN") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target"), "debug", "confab"
)
PASSWORD = "slix-pass-123"
TIMEOUT = 10


class Server:
    """`confab serve` on free ports in a temporary data directory."""

    def __init__(self):
        if not os.path.exists(BIN):
            sys.exit(f"confab binary not found at {BIN}: run `cargo build -p confab` (or set CONFAB_BIN)")
        self.dir = tempfile.mkdtemp(prefix="confab-slix-")
        self.env = dict(os.environ, CONFAB_DATA_DIR=self.dir, CONFAB_HTTP_ADDR="127.0.0.1:0",
                        CONFAB_XMPP_ADDR="127.0.0.1:0", NO_COLOR="1")
        self.env.pop("CONFAB_BIN", None)
        out = subprocess.run([BIN, "app", "create", "--name", "slixmpp"], env=self.env,
                             capture_output=True, text=True, check=True).stdout
        self.app = json.loads(out[out.index("{"):])
        self.proc = subprocess.Popen([BIN, "serve"], env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.http = self.xmpp = None
        deadline = time.time() + 20
        while (self.http is None or self.xmpp is None) and time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            m = re.search(r"listening http=(\S+)", line)
            if m:
                self.http = m.group(1).rstrip(",;")
            m = re.search(r"listening xmpp=(\S+)", line)
            if m:
                self.xmpp = m.group(1).rstrip(",;")
        if self.http is None or self.xmpp is None:
            self.stop()
            sys.exit("confab did not log its listening addresses")
        # Keep draining the log so the server never blocks on a full pipe.
        asyncio.get_event_loop().run_in_executor(None, self.proc.stderr.read)

    def signup(self, login):
        body = json.dumps({"user": {"login": login, "password": PASSWORD}}).encode()
        req = urllib.request.Request(f"http://{self.http}/users.json", data=body, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "CB-AuthKey": self.app["auth_key"]})
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            user = json.load(r)["user"]
        return f"{user['id']}-{self.app['id']}@localhost", user["id"]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, name):
        super().__init__(jid, PASSWORD)
        self.name = name
        for p in ("xep_0030", "xep_0199", "xep_0280", "xep_0012"):
            self.register_plugin(p)
        # The server's certificate is self-signed.
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.started = asyncio.Event()
        self.events = []
        self.changed = asyncio.Event()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("ssl_invalid_cert", lambda *_: None)
        for ev in ("message", "carbon_sent", "carbon_received", "presence_available",
                   "presence_unavailable", "presence_subscribe", "presence_subscribed",
                   "roster_update"):
            self.add_event_handler(ev, self._recorder(ev))

    def _recorder(self, name):
        def record(stanza):
            self.events.append((name, stanza))
            self.changed.set()
        return record

    async def on_start(self, _):
        await self.get_roster()
        self.send_presence()
        self.started.set()

    async def wait_for(self, name, pred=lambda s: True, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            for i, (n, s) in enumerate(self.events):
                if n == name and pred(s):
                    del self.events[i]
                    return s
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.name}: no {name} event within {timeout}s")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def until(self, cond, what, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: {what} not reached within {timeout}s")
            await asyncio.sleep(0.05)


async def online(server, jid, name):
    host, port = server.xmpp.rsplit(":", 1)
    c = Client(jid, name)
    c.connect(host, int(port))
    await asyncio.wait_for(c.started.wait(), TIMEOUT)
    return c


async def main():
    server = Server()
    clients = []
    try:
        alice_jid, alice_id = server.signup("slix_alice")
        bob_jid, bob_id = server.signup("slix_bob")

        alice = await online(server, alice_jid, "alice")
        clients.append(alice)
        # STARTTLS was negotiated (PLAIN is refused by slixmpp on an unencrypted stream).
        assert alice.transport.get_extra_info("ssl_object") is not None, "stream is not encrypted"
        alice2 = await online(server, alice_jid, "alice2")
        clients.append(alice2)
        bob = await online(server, bob_jid, "bob")
        clients.append(bob)
        assert alice.boundjid.resource != alice2.boundjid.resource

        # Roster: alice adds bob; the roster push arrives.
        await alice.update_roster(bob_jid, name="Bob", groups=["Friends"])
        await alice.until(lambda: bob_jid in alice.client_roster, "roster push for bob")
        assert alice.client_roster[bob_jid]["name"] == "Bob"
        assert alice.client_roster[bob_jid]["groups"] == ["Friends"]

        # Subscription both ways: bob's slixmpp authorizes and subscribes back (auto_authorize,
        # auto_subscribe), alice's authorizes bob's request.
        alice.send_presence(pto=bob_jid, ptype="subscribe")
        req = await bob.wait_for("presence_subscribe")
        assert req["from"].bare == alice_jid
        await alice.until(lambda: alice.client_roster[bob_jid]["subscription"] == "both",
                          "alice's subscription both")
        await bob.until(lambda: alice_jid in bob.client_roster and
                        bob.client_roster[alice_jid]["subscription"] == "both",
                        "bob's subscription both")
        # alice sees bob's presence (the presence sent when he approved, or a broadcast).
        await alice.until(lambda: len(alice.client_roster.presence(bob_jid)) > 0, "bob online for alice")
        # A fresh presence from alice reaches bob.
        alice.send_presence(pstatus="busy")
        await bob.wait_for("presence_available",
                           lambda p: p["from"].bare == alice_jid and p["status"] == "busy")

        # Carbons: alice2 enables them and gets a <sent/> copy of what alice sends to bob.
        await alice2.plugin["xep_0280"].enable()
        alice.send_message(mto=bob_jid, mbody="carbon me", mtype="chat")
        msg = await bob.wait_for("message", lambda m: m["body"] == "carbon me")
        assert msg["from"].bare == alice_jid
        carbon = await alice2.wait_for("carbon_sent")
        assert carbon["carbon_sent"]["body"] == "carbon me"
        assert carbon["carbon_sent"]["to"].bare == bob_jid

        # Ping (XEP-0199) to the server.
        rtt = await alice.plugin["xep_0199"].ping(jid="localhost", timeout=TIMEOUT)
        assert rtt is not None and rtt >= 0

        # Last activity (XEP-0012): bob is online → 0 seconds.
        last = await alice.plugin["xep_0012"].get_last_activity(bob_jid, timeout=TIMEOUT)
        assert int(last["last_activity"]["seconds"]) == 0, last

        # bob leaves: alice gets his unavailable presence, and his last activity is small.
        bob.disconnect()
        await alice.wait_for("presence_unavailable", lambda p: p["from"].bare == bob_jid)
        clients.remove(bob)
        last = await alice.plugin["xep_0012"].get_last_activity(bob_jid, timeout=TIMEOUT)
        assert 0 <= int(last["last_activity"]["seconds"]) < 60, last
        print("slixmpp: all checks passed")
    finally:
        for c in clients:
            c.disconnect()
        await asyncio.sleep(0.3)
        server.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR if not os.environ.get("SLIX_DEBUG") else logging.DEBUG)
    # slixmpp leaves its filter tasks pending at disconnect; asyncio would log each one.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(asyncio.wait_for(main(), 55))
