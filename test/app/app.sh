#!/bin/sh
# START_DELAY simulates an app that is slow to boot: a deploy must wait for its health.
sleep "${START_DELAY:-0}"
if [ "$HOSTILE_LOG" = 1 ]; then
  printf '%s\n' '::error::pwned' '::add-mask::hostile-mask-value' '::group::hostile group' '```' '</code></pre><h1>pwned-html</h1>' '' '# pwned-heading'
fi
exec httpd -f -p 3000 -h /www
