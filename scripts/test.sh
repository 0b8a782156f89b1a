#!/usr/bin/env bash
# Install if needed, then run the whole test suite (no GPU needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The deployment test runs a real PostgreSQL server on loopback: install the server if absent.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing the PostgreSQL server for the deployment test"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
      || echo "test: could not install PostgreSQL; the deployment test will be skipped (a failure under ACAV_REQUIRE_SERVICES=1)"
  fi
fi
# The Celery test runs a real Redis broker on loopback: install the server if absent.
if ! command -v redis-server >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test: installing redis-server for the Celery test"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) \
    || echo "test: could not install redis-server; the Celery test will be skipped (a failure under ACAV_REQUIRE_SERVICES=1)"
fi
# The deployment test runs the UI's authenticating proxy config in a real nginx: install it if absent
# (policy-rc.d keeps apt from starting the distribution's own nginx service).
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test: installing nginx for the deployment test"
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.acav && chmod +x /usr/sbin/policy-rc.d.acav
  [ -e /usr/sbin/policy-rc.d ] || cp /usr/sbin/policy-rc.d.acav /usr/sbin/policy-rc.d
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null) \
    || echo "test: could not install nginx; the proxy test will be skipped (a failure under ACAV_REQUIRE_SERVICES=1)"
  if cmp -s /usr/sbin/policy-rc.d /usr/sbin/policy-rc.d.acav; then rm -f /usr/sbin/policy-rc.d; fi
  rm -f /usr/sbin/policy-rc.d.acav
fi
# The independent evaluation corpora need espeak-ng and fonts (spoken digits) and the freedesktop
# sound theme (photos with recorded sounds).
if ! command -v espeak-ng >/dev/null 2>&1 || [ ! -d /usr/share/fonts/opentype/urw-base35 ] \
   || [ ! -d /usr/share/sounds/freedesktop/stereo ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing espeak-ng, fonts and sounds for the independent evaluation corpora"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng fonts-dejavu-core \
      fonts-urw-base35 fonts-freefont-ttf fonts-liberation2 sound-theme-freedesktop >/dev/null) \
      || echo "test: could not install espeak-ng/fonts/sounds; the corpus tests will be skipped (a failure under ACAV_REQUIRE_SERVICES=1)"
  fi
fi
# The "stamps" corpus: Tux Paint's photo stamps and GCompris's photos and recordings (Debian packages).
bash scripts/install_corpora.sh
# Under CI a skipped service-backed test (PostgreSQL, Redis, espeak-ng, fonts) is a failure (conftest).
if [ "${CI:-}" = true ]; then export ACAV_REQUIRE_SERVICES=1; fi
exec .venv/bin/python -m pytest "$@"
