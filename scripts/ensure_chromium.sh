#!/bin/sh
# Headless Chromium and its WebDriver for tests/ui (make test-ui): Debian's chromium and
# chromium-driver, installed when missing and this runs as root with apt-get (CI). Otherwise
# says what to install and fails: make test-ui exists to click in a real browser.
if command -v chromedriver >/dev/null 2>&1 && { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing chromium and chromium-driver for the UI tests (tests/ui)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
        && exit 0
    echo "error: apt-get could not install chromium chromium-driver" >&2
    exit 1
fi
echo "error: chromium and chromium-driver are missing and cannot be installed here (needs root and apt-get):" \
     "install them (Debian: apt-get install chromium chromium-driver) and run make test-ui again" >&2
exit 1
