"""A ChatServer API client (REST with `requests`, the JSON WebSocket with `websockets`), the way a
third-party client would speak to confab's ChatServer face (docs/chatserver.md)."""

import base64
import json
import threading
import time
import uuid

import requests
from websockets.frames import Opcode
from websockets.sync.client import ClientConnection, connect

HTTP_TIMEOUT_SECS = 10
WS_OPEN_TIMEOUT_SECS = 10


class ChatServerError(Exception):
    """A non-2xx answer: the status and the server's `{"error": true, "reason"}` body."""

    def __init__(self, method, path, status, body):
        super().__init__(f"{method} {path} -> {status}: {json.dumps(body)}")
        self.status = status
        self.body = body


def new_device_info(name="Python client"):
    """A `DeviceInfo` without push (transport `none`)."""
    return {"id": str(uuid.uuid4()).upper(), "name": name, "model": "CPython", "transport": "none"}


class _PingAwareConnection(ClientConnection):
    """Notes the server's first ping: the server registers the socket before it pings, so after
    the ping every event of this session reaches it. The library answers pings itself and does
    not surface them otherwise."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pinged = threading.Event()

    def process_event(self, event):
        if self.response is not None and getattr(event, "opcode", None) is Opcode.PING:
            self.pinged.set()
        super().process_event(event)


class EventSocket:
    """The push-only WebSocket of one device session; a reader thread keeps every frame so tests
    can wait for one by content, whatever arrived before it."""

    def __init__(self, ws_url, token):
        self._ws = connect(
            ws_url,
            additional_headers={"Authorization": f"Bearer {token}"},
            create_connection=_PingAwareConnection,
            open_timeout=WS_OPEN_TIMEOUT_SECS,
        )
        if not self._ws.pinged.wait(WS_OPEN_TIMEOUT_SECS):
            self._ws.close()
            raise TimeoutError("the server sent no ping after the WebSocket upgrade")
        self._frames = []  # {"binary": bool, "frame": decoded JSON, "used": bool}
        self._changed = threading.Condition()
        self.closed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for data in self._ws:
                binary = isinstance(data, bytes)
                text = data.decode("utf-8") if binary else data
                with self._changed:
                    self._frames.append({"binary": binary, "frame": json.loads(text), "used": False})
                    self._changed.notify_all()
        except Exception:  # a closed socket ends the reader; waiters then time out
            pass
        finally:
            with self._changed:
                self.closed = True
                self._changed.notify_all()

    def wait_for(self, event, match=None, timeout=10.0):
        """The first frame not taken yet whose `event` is `event` and whose values at the dotted
        paths of `match` (e.g. {"payload.text": "hi"}) are equal; the frame is taken."""
        match = match or {}
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for entry in self._frames:
                    frame = entry["frame"]
                    if entry["used"] or frame.get("event") != event:
                        continue
                    if all(_at(frame, path) == want for path, want in match.items()):
                        entry["used"] = True
                        return {"binary": entry["binary"], "frame": frame}
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    seen = [e["frame"] for e in self._frames if not e["used"]]
                    state = "closed" if self.closed else f"none within {timeout} s"
                    raise TimeoutError(f'no "{event}" frame matching {json.dumps(match)} ({state}); '
                                       f"frames not taken: {json.dumps(seen)}")
                self._changed.wait(left)

    def close(self):
        self._ws.close()


def _at(value, dotted):
    for key in dotted.split("."):
        if isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        elif isinstance(value, dict) and key in value:
            value = value[key]
        else:
            return None
    return value


class ChatServerClient:
    """One user of the ChatServer face with one device session."""

    def __init__(self, base_url):
        self.base_url = base_url.rstrip("/")
        self._http = requests.Session()
        self._token = None
        self.user = None
        self.session_id = None
        self.socket = None

    # Accounts

    def register(self, name, username, password):
        body = {"name": name, "username": username, "password": password,
                "deviceInfo": new_device_info()}
        return self._signed_in(self._request("POST", "/users", body, auth=False))

    def login(self, username, password):
        # Basic auth and the bare DeviceInfo as the body (not wrapped), as the original reads it.
        basic = base64.b64encode(f"{username}:{password}".encode()).decode()
        answer = self._request("POST", "/users/login", new_device_info(), auth=False,
                               headers={"Authorization": f"Basic {basic}"})
        return self._signed_in(answer)

    def _signed_in(self, private_info):
        # Login lists every session of the user; only the new one carries its token.
        mine = next(s for s in private_info["deviceSessions"] if s.get("accessToken"))
        self._token = mine["accessToken"]
        self.session_id = mine["id"]
        self.user = private_info["info"]
        return {"user": self.user, "sessionId": self.session_id}

    def search_users(self, query):
        return self._request("GET", "/users", params={"s": query})

    # Chats and messages

    def create_chat(self, participants, is_personal, title=None):
        body = {"participants": participants, "isPersonal": is_personal}
        if title is not None:
            body["title"] = title
        return self._request("POST", "/chats", body)

    def list_chats(self):
        return self._request("GET", "/chats")

    def post_message(self, chat_id, text):
        local_id = f"{self.user['id']}+{str(uuid.uuid4()).upper()}"
        return self._request("POST", f"/chats/{chat_id}/messages", {"localId": local_id, "text": text})

    def list_messages(self, chat_id, count=50):
        return self._request("GET", f"/chats/{chat_id}/messages", params={"count": count})

    def edit_message(self, chat_id, message_id, text):
        return self._request("PUT", f"/chats/{chat_id}/messages/{message_id}", {"text": text})

    def read_message(self, chat_id, message_id):
        return self._request("PUT", f"/chats/{chat_id}/messages/{message_id}/read")

    # Live events

    def open_socket(self):
        ws_url = self.base_url.replace("http://", "ws://", 1) + f"/{self.session_id}"
        self.socket = EventSocket(ws_url, self._token)
        return True

    def close(self):
        if self.socket:
            self.socket.close()

    def _request(self, method, path, body=None, auth=True, headers=None, params=None):
        all_headers = dict(headers or {})
        if auth:
            all_headers["Authorization"] = f"Bearer {self._token}"
        response = self._http.request(method, self.base_url + path, json=body, params=params,
                                      headers=all_headers, timeout=HTTP_TIMEOUT_SECS)
        try:
            answer = response.json()
        except ValueError:
            answer = response.text
        if not response.ok:
            raise ChatServerError(method, path, response.status_code, answer)
        return answer
