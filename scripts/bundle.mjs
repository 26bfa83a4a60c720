// Bundles lib/index.js (compiled by tsc) into dist/index.js with ncc.
// ncc's ESM output has no __dirname/__filename, which ssh2's bundled code reads as it loads;
// they are defined from import.meta.url right after the bundle's first import line.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
execFileSync('ncc', ['build', 'lib/index.js', '-o', 'dist', '--license', 'licenses.txt', '--target', 'es2023'], { stdio: 'inherit' });

const file = 'dist/index.js';
const source = readFileSync(file, 'utf8');
const shim =
  "import { fileURLToPath as __deployActionFileURLToPath } from 'node:url';\n" +
  "import { dirname as __deployActionDirname } from 'node:path';\n" +
  'const __filename = __deployActionFileURLToPath(import.meta.url);\n' +
  'const __dirname = __deployActionDirname(__filename);\n';
if (source.includes('const __dirname = __deployActionDirname')) throw new Error('bundle already patched');
const firstLineEnd = source.indexOf('\n') + 1;
writeFileSync(file, source.slice(0, firstLineEnd) + shim + source.slice(firstLineEnd));
