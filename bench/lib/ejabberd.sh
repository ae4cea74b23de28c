# Shared by the ejabberd benchmarks: a test vhost for ejabberd from Debian's package, written under a
# work directory, with ejabberdctl configs pointing at it. Source it, then call `ejabberd_prepare "$work"`.
# It writes $work/ejabberd/{ejabberd.yml, ejabberd-mam.yml (archiving every 1:1 message), ejabberdctl.cfg,
# ejabberdctl-mam.cfg}. Needs root.

ejabberd_prepare() {
local work="$1"
echo "ejabberd - nofile $(ulimit -Hn)" > /etc/security/limits.d/90-ejabberd-bench.conf
ejabberdctl stop >/dev/null 2>&1 || true
ejabberdctl stopped >/dev/null 2>&1 || true
mkdir -p "$work/ejabberd/logs" "$work/ejabberd/spool"
ejconf() { # $1 = extra modules
cat <<YML
hosts:
  - bench.localhost
loglevel: warning
registration_timeout: infinity
shaper_rules:
  c2s_shaper: none
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  register:
    allow: all
listen:
  -
    port: 5322
    ip: "127.0.0.1"
    module: ejabberd_c2s
    backlog: 1024
    max_stanza_size: 262144
    shaper: c2s_shaper
    access: all
    starttls: false
auth_method: internal
modules:
  mod_carboncopy: {}
  mod_disco: {}
  mod_last: {}
  mod_offline: {}
  mod_ping: {}
  mod_privacy: {}
  mod_register:
    ip_access: all
    access: register
    welcome_message: {subject: "", body: ""}
  mod_roster: {}
  mod_stream_mgmt: {}
$1
YML
}
ejconf "" > "$work/ejabberd/ejabberd.yml"
ejconf "  mod_mam: {default: always}" > "$work/ejabberd/ejabberd-mam.yml"
sed "s|^EJABBERD_CONFIG_PATH=.*|EJABBERD_CONFIG_PATH=$work/ejabberd/ejabberd.yml|" \
  /etc/ejabberd/ejabberdctl.cfg > "$work/ejabberd/ejabberdctl.cfg"
sed "s|^EJABBERD_CONFIG_PATH=.*|EJABBERD_CONFIG_PATH=$work/ejabberd/ejabberd-mam.yml|" \
  /etc/ejabberd/ejabberdctl.cfg > "$work/ejabberd/ejabberdctl-mam.cfg"
chown -R ejabberd:ejabberd "$work/ejabberd"
}
