#!/bin/sh
# START_DELAY simulates an app that is slow to boot: a deploy must wait for its health.
sleep "${START_DELAY:-0}"
exec httpd -f -p 3000 -h /www
