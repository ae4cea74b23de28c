#!/usr/bin/env python3
"""Writes the seed corpora (fuzz/corpus/<target>/) from what the connectycube SDK sends on the wire.

Run again after changing the lists below; the files are committed, libFuzzer's finds are not.
"""
import hashlib
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "corpus")

WS = "urn:ietf:params:xml:ns:xmpp-framing"
# Stanzas as the SDK writes them over WebSocket (every one carries xmlns="jabber:client").
SDK_STANZAS = [
    f'<open version="1.0" xmlns="{WS}" to="127.0.0.1"/>',
    '<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">ADctNDIAVE9LRU4xMjM=</auth>',
    '<iq type="set" id="4u1ihcrafk" xmlns="jabber:client"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></iq>',
    '<enable xmlns="urn:xmpp:sm:3"/>',
    '<iq type="set" from="7-42@localhost/res-abc" id="7b5b-1:enableCarbons" xmlns="jabber:client"><enable xmlns="urn:xmpp:carbons:2"/></iq>',
    '<presence xmlns="jabber:client"/>',
    '<message from="7-42@localhost/res-abc" to="9-42@localhost" type="chat" id="6b02b1f7b5a07d1688000000" xmlns="jabber:client">'
    '<body>Hello &amp; &lt;world&gt;</body><extraParams xmlns="jabber:client"><save_to_history>1</save_to_history>'
    '<dialog_id>DLG1</dialog_id><date_sent>1700000000</date_sent>'
    '<attachment uid="u1" type="image" size="100" url="http://x/y?a=1&amp;b=2"/>'
    '<custom>v</custom><nested><a>1</a><b><c>d</c></b></nested><nul></nul><tags><0>a</0><1>b</1></tags></extraParams></message>',
    '<r xmlns="urn:xmpp:sm:3"/>',
    '<a xmlns="urn:xmpp:sm:3" h="3"/>',
    '<message from="7-42@localhost/res-abc" to="42_5f1c2d3e4b5a69788796a5b4@muc.localhost" type="groupchat" id="6b02b1f7b5a07d1688000001" xmlns="jabber:client"><body>group hi</body><extraParams xmlns="jabber:client"><save_to_history>1</save_to_history></extraParams></message>',
    '<message type="headline" id="6b02b1f7b5a07d1688000002" to="9-42@localhost" xmlns="jabber:client"><body>sys</body><extraParams xmlns="jabber:client"><moduleIdentifier>SystemNotifications</moduleIdentifier><param1>a</param1></extraParams></message>',
    '<message from="7-42@localhost/res-abc" to="9-42@localhost" type="chat" xmlns="jabber:client"><composing xmlns="http://jabber.org/protocol/chatstates"/></message>',
    '<message type="chat" from="7-42@localhost/res-abc" id="6b02b1f7b5a07d1688000003" to="9-42@localhost" xmlns="jabber:client"><displayed xmlns="urn:xmpp:chat-markers:0" id="MID1"/><extraParams xmlns="jabber:client"><dialog_id>DLG1</dialog_id></extraParams></message>',
    '<message from="7-42@localhost/res-abc" to="9-42@localhost" type="chat" id="6b02b1f7b5a07d1688000004" xmlns="jabber:client"><body>edited</body><replace xmlns="urn:xmpp:message-correct:0" id="MID1" last="true"/><extraParams xmlns="jabber:client"><dialog_id>DLG1</dialog_id></extraParams></message>',
    '<message from="7-42@localhost/res-abc" to="42_DLG2@muc.localhost" type="groupchat" id="6b02b1f7b5a07d1688000005" xmlns="jabber:client"><remove xmlns="urn:xmpp:message-delete:0" id="MID2"/><extraParams xmlns="jabber:client"><dialog_id>DLG2</dialog_id></extraParams></message>',
    '<iq type="get" from="7-42@localhost/res-abc" to="9-42@localhost" id="b1:lastActivity" xmlns="jabber:client"><query xmlns="jabber:iq:last"/></iq>',
    '<iq id="b2:ping" type="get" to="localhost" xmlns="jabber:client"><ping xmlns="urn:xmpp:ping"/></iq>',
    '<iq id="b3:markActive" type="set" xmlns="jabber:client"><mobile xmlns="http://tigase.org/protocol/mobile#v2" enable="false"/></iq>',
    '<iq id="b4:statusStreaming" type="set" xmlns="jabber:client"><subscribe xmlns="https://connectycube.com/protocol/status_streaming" user_jid="9-42@localhost" enable="true"/></iq>',
    '<presence id="b5:join" from="7-42@localhost/res-abc" to="42_DLG2@muc.localhost/7" xmlns="jabber:client"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="0"/></x></presence>',
    '<presence type="unavailable" from="7-42@localhost/res-abc" to="42_DLG2@muc.localhost/7" xmlns="jabber:client"/>',
    '<iq type="set" id="b6:edit" xmlns="jabber:client"><query xmlns="jabber:iq:privacy"><list name="myList"><item type="jid" value="9-42@localhost" action="deny" order="1"><message/><presence-in/><presence-out/><iq/></item></list></query></iq>',
    '<iq type="get" id="b7:roster" xmlns="jabber:client"><query xmlns="jabber:iq:roster"/></iq>',
    f'<close xmlns="{WS}"/>',
]
TCP_HEADER = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
              "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>")

# Query strings and form bodies as the SDK encodes them (sorted keys, Rack brackets, comma lists).
QUERIES = [
    "_id=abc&count=1&limit=100&skip=0&sort_desc=last_message_date_sent&type[in]=2%2C3",
    "chat_dialog_id=5f1c2d3e4b5a69788796a5b4&date_sent[lt]=1700000000&limit=50&mark_as_read=0&skip=0&sort_desc=date_sent",
    "id[in][]=1&id[in][]=2&limit=10&login=x",
    "filter[]=number+id+in+1,2&page=1&per_page=10",
    "_id[in]=5f1c2d3e4b5a69788796a5b4%2C5f1c2d3e4b5a69788796a5b5&limit=10",
    "data[class_name]=Meta&data[level][gte]=3&name[ctn]=team&updated_at[gt]=2024-01-01T00:00:00Z",
    "created_at[lte]=1700000000&message[ctn]=hello&sender_id[nin]=1,2,3&sort_asc=_id&skip=20",
    "user[login]=bob&user[password]=secret123&user[tag_list]=a%2Cb&user[custom_data]=%7B%22k%22%3A1%7D",
    "occupants_ids=5,6&type=2&name=Group&photo=null&u=undefined&b=true",
    "push_all[occupants_ids][]=1&push_all[occupants_ids][]=2&pull_all[occupants_ids][]=3",
    "attachments.type=image&recipient_id=9&read=1&sort_desc=updated_at",
    "settings[enabled]=1&dialog_id=5f1c2d3e4b5a69788796a5b4",
]
JSON_BODIES = [
    {"application_id": 42, "auth_key": "k", "user": {"login": "bob", "password": "secret123"}},
    {"type": 2, "name": "Group", "occupants_ids": "5, 6", "photo": None, "data": {"class_name": "Meta", "level": 3}},
    {"type": 3, "occupants_ids": [5], "description": "x", "extensions": {"a": 1}},
    {"chat_dialog_id": "5f1c2d3e4b5a69788796a5b4", "message": "hi", "send_to_chat": 1, "markable": "1",
     "attachments": [{"type": "image", "uid": "u1", "size": 100}], "custom": {"nested": [1, "2", True]}},
    {"read": "true", "delivered": 0, "message": "edited"},
    {"push_all": {"occupants_ids": [1, 2]}, "pull_all": {"occupants_ids": "3,4"}, "limit": "20", "skip": -1},
    {"user": {"full_name": "Bob", "tag_list": ["a", "b"], "external_user_id": 1234567890123, "old_password": "x"}},
    {"settings": {"enabled": False}, "limit": 1e300, "skip": "9999999999999999999999"},
]


def write(target, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    # xmpp_stream: byte 0 = framing (bit 0: WebSocket) and limit (bit 1: default), byte 1 = chunk seed.
    tcp = TCP_HEADER + "".join(s for s in SDK_STANZAS[1:-1]) + "</stream:stream>"
    write("xmpp_stream", bytes([0b10, 7]) + tcp.encode())
    write("xmpp_stream", bytes([0b00, 200]) + tcp.encode())
    for i, s in enumerate(SDK_STANZAS):
        write("xmpp_stream", bytes([0b11, i * 37 % 256]) + s.encode())
        write("xmpp_stream", bytes([0b10, i]) + (TCP_HEADER + s).encode())
    for q in QUERIES:
        write("rack_params", q.encode())
        write("filters", q.encode())
    for b in JSON_BODIES:
        write("json_params", json.dumps(b).encode())


if __name__ == "__main__":
    main()
