#!/usr/bin/env bash
# Installs nats-server from Debian when it is missing: the tests of several nodes start private
# NATS servers with it (crates/confab-testkit/src/nats.rs).
set -euo pipefail
if command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; then
    exit 0
fi
sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
sudo_if_needed apt-get update -qq
sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
