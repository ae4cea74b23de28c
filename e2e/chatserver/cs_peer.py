"""Drives ChatServer users for the Node end-to-end tests (e2e/lib/cs-peer.mjs): one JSON command a
line on stdin, `{"id", "user", "cmd", "args"}`, one JSON answer a line on stdout,
`{"id", "ok": true, "value"}` or `{"id", "ok": false, "error", "status"?}`. `user` names a client
of this process, so one process can hold several users.

Usage: cs_peer.py <ChatServer base URL, e.g. http://127.0.0.1:8081>"""

import json
import sys

from cs_client import ChatServerClient, ChatServerError


def main():
    base_url = sys.argv[1]
    clients = {}

    def client(name):
        if name not in clients:
            clients[name] = ChatServerClient(base_url)
        return clients[name]

    commands = {
        "register": lambda c, a: c.register(a["name"], a["username"], a["password"]),
        "login": lambda c, a: c.login(a["username"], a["password"]),
        "search_users": lambda c, a: c.search_users(a["query"]),
        "create_chat": lambda c, a: c.create_chat(a["participants"], a["isPersonal"], a.get("title")),
        "list_chats": lambda c, a: c.list_chats(),
        "post": lambda c, a: c.post_message(a["chatId"], a["text"]),
        "list_messages": lambda c, a: c.list_messages(a["chatId"], a.get("count", 50)),
        "edit": lambda c, a: c.edit_message(a["chatId"], a["messageId"], a["text"]),
        "read": lambda c, a: c.read_message(a["chatId"], a["messageId"]),
        "open_ws": lambda c, a: c.open_socket(),
        "next_event": lambda c, a: c.socket.wait_for(a["event"], a.get("match"), a.get("timeout", 10.0)),
    }

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        answer = {"id": request["id"]}
        try:
            answer["value"] = commands[request["cmd"]](client(request["user"]), request.get("args") or {})
            answer["ok"] = True
        except ChatServerError as err:
            answer.update(ok=False, error=str(err), status=err.status)
        except Exception as err:  # reported to the test, which fails with it
            answer.update(ok=False, error=f"{type(err).__name__}: {err}")
        print(json.dumps(answer), flush=True)
    for c in clients.values():
        c.close()


if __name__ == "__main__":
    main()
