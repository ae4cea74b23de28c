"""Signs up N users on a running confab over REST and opens a session for each.

usage: confab-users.py HTTP_ADDR APP_JSON N PASSWORD WORK_DIR
Writes WORK_DIR/cf-pass.txt ("<userId>-<appId> <password>" per line) and WORK_DIR/cf-token.txt
("<userId>-<appId> <session token>"), the --users-file formats of xmpp-load.
"""
import json
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

http, app_out, n, pw, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
app = json.loads(app_out[app_out.index("{"):])


def post(path, body, headers):
    req = urllib.request.Request(f"http://{http}{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def signup(i):
    login = f"bench{i}"
    uid = post("/users.json", {"user": {"login": login, "password": pw}}, {"CB-AuthKey": app["auth_key"]})["user"]["id"]
    s = post("/session.json", {"application_id": app["id"], "auth_key": app["auth_key"],
                               "user": {"login": login, "password": pw}}, {})
    return uid, s["session"]["token"]


with ThreadPoolExecutor(8) as ex, open(f"{work}/cf-pass.txt", "w") as fp, open(f"{work}/cf-token.txt", "w") as ft:
    for uid, tok in ex.map(signup, range(1, n + 1)):
        print(f"{uid}-{app['id']} {pw}", file=fp)
        print(f"{uid}-{app['id']} {tok}", file=ft)
