#!/bin/sh
# PHP for tests/contract/test_mobizon_php.py (the official Mobizon PHP client against the sandbox).
# mobizon-php needs ext-curl, ext-json and ext-simplexml (its composer.json): Debian's php-cli
# (json built in), php-curl and php-xml (SimpleXML). Installs them when missing and this runs as
# root with apt-get (CI); otherwise says why, and the test skips (or fails when CI=true).
has_php() {
    command -v php >/dev/null 2>&1 || return 1
    modules=$(php -m 2>/dev/null)
    for ext in curl json SimpleXML; do
        printf '%s\n' "$modules" | grep -qx "$ext" || return 1
    done
}
has_php && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing PHP for the Mobizon PHP client contract test (php-cli php-curl php-xml)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq php-cli php-curl php-xml >/dev/null \
        || echo "warning: could not install PHP; the PHP contract test will skip (and fail under CI=true)"
else
    echo "note: PHP with curl/json/SimpleXML is missing and cannot be installed here (needs root and apt-get);" \
         "the PHP contract test will skip (and fail under CI=true)"
fi
exit 0
