// The bench app: answers its version on / and ok on /healthcheck. Its dependencies are loaded,
// as an app would, so a broken install fails at start.
import http from 'node:http';
import semver from 'semver';
import YAML from 'yaml';

const version = process.env.APP_VERSION ?? 'dev';
const greeting = 'hello';
http
  .createServer((request, response) => {
    if (request.url === '/healthcheck') return void response.end('ok\n');
    response.end(YAML.stringify({ greeting, version, valid: semver.valid(version) !== null }));
  })
  .listen(3000);
