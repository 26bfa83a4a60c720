// Writes deploy.schema.json from the compiled config readers (lib/, built by tsc just before):
// one source of truth for the parser and for editors. test/unit/json-schema.test.ts fails when
// the committed file differs from what the source generates.
import { writeFileSync } from 'node:fs';
import { deployConfigJsonSchema } from '../lib/config/json-schema.js';

writeFileSync('deploy.schema.json', `${JSON.stringify(deployConfigJsonSchema(), null, 2)}\n`);
