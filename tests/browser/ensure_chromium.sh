#!/bin/sh
# Install Debian's Chromium and its driver for the browser tests when they are missing.
# Needs root and apt-get (as on CI); otherwise says why and leaves it to the tests to skip.
# Never fails the build: the browser tests skip with the reason when there is still no browser.
set -u
CHROMIUM=${TRAINSENTRY_CHROMIUM:-/usr/bin/chromium}
CHROMEDRIVER=${TRAINSENTRY_CHROMEDRIVER:-/usr/bin/chromedriver}

if [ -x "$CHROMIUM" ] && [ -x "$CHROMEDRIVER" ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "ensure_chromium: $CHROMIUM or $CHROMEDRIVER missing and not root: the browser tests will skip" >&2
    echo "ensure_chromium: install them with: sudo apt-get install chromium chromium-driver" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: no apt-get here: the browser tests will skip" >&2
    exit 0
fi
echo "ensure_chromium: installing chromium and chromium-driver (Debian packages) ..." >&2
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; then
    echo "ensure_chromium: installed $("$CHROMIUM" --version 2>/dev/null)" >&2
else
    echo "ensure_chromium: apt-get could not install chromium chromium-driver: the browser tests will skip" >&2
fi
exit 0
