#!/usr/bin/env bash
# Install the Debian packages of the "stamps" evaluation corpus (acav_assets.core.generators.stamps_sounds):
# tuxpaint-stamps-default (photo cut-outs with sounds) and gcompris-qt-data (photos and recordings).
# Idempotent and quiet: prints one line. Never fails the caller: without root or apt it says so and exits 0.
set -uo pipefail
PACKAGES=(tuxpaint-stamps-default gcompris-qt-data)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_corpora: ${PACKAGES[*]} already installed"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install_corpora: ${missing[*]} missing and not root with apt-get; the stamps corpus tests will be skipped"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
start=$SECONDS
install() { apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/install_corpora.log 2>&1; }
# the package lists may be absent (slim images): update them only when the install fails
if install || { apt-get update -qq >>/tmp/install_corpora.log 2>&1 && install; }; then
  echo "install_corpora: installed ${missing[*]} in $((SECONDS - start)) s"
else
  echo "install_corpora: could not install ${missing[*]} (see /tmp/install_corpora.log); the stamps corpus tests will be skipped"
fi
exit 0
