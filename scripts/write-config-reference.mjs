// Writes the configuration reference into docs/configuration.md, between its markers, from the
// compiled config readers (lib/, built by tsc just before), as write-schema.mjs writes
// deploy.schema.json from the same readers. test/unit/config-reference.test.ts fails when the
// committed page differs from what the source renders.
import { readFileSync, writeFileSync } from 'node:fs';
import { REFERENCE_END, REFERENCE_START, renderReference } from '../lib/config/reference.js';

const path = 'docs/configuration.md';
const page = readFileSync(path, 'utf8');
const start = page.indexOf(REFERENCE_START);
const end = page.indexOf(REFERENCE_END);
if (start < 0 || end < start) throw new Error(`${path}: the reference markers are missing (${REFERENCE_START} ... ${REFERENCE_END})`);
writeFileSync(path, page.slice(0, start) + renderReference() + page.slice(end + REFERENCE_END.length));
