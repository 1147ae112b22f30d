#!/usr/bin/env bash
# Test prerequisites that npm cannot install: Debian packages and the local database servers.
# Idempotent; installs only what is missing. Runs before `npm test` (pretest).
set -euo pipefail

need=()
command -v zstd >/dev/null || need+=(zstd)
command -v tar >/dev/null || need+=(tar)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v pg_dump >/dev/null || need+=(postgresql-client)
command -v mariadb-dump >/dev/null || need+=(mariadb-client)
[ -x /usr/bin/chromium ] || need+=(chromium)

if [ ${#need[@]} -gt 0 ]; then
  echo "[test-setup] installing Debian packages: ${need[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 || {
    $SUDO apt-get update >/dev/null 2>&1 || true
    $SUDO apt-get install -y --no-install-recommends "${need[@]}"
  }
fi

# The database servers the tests use (TOOLCHAIN.md); start them if they are installed but down.
if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  if [ -d /etc/postgresql ]; then
    echo "[test-setup] starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/3306) 2>/dev/null; then
  if [ -x /usr/sbin/mariadbd ]; then
    echo "[test-setup] starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
    for _ in $(seq 1 30); do (exec 3<>/dev/tcp/127.0.0.1/3306) 2>/dev/null && break; sleep 1; done
  fi
fi
exit 0
