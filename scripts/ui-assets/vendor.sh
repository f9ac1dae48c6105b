#!/bin/sh
# Copies the web inspector's browser library from npm (pinned in package-lock.json) into the
# package, where it is committed: the server builds nothing at run time. Run after changing the
# pinned version, then commit src/riposte/ui/static/ and update VENDORED.md there.
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error
cp node_modules/htmx.org/dist/htmx.min.js ../../src/riposte/ui/static/htmx.min.js
cp node_modules/htmx.org/LICENSE ../../src/riposte/ui/static/htmx.LICENSE
node -e 'console.log("htmx.org", require("./node_modules/htmx.org/package.json").version)'
