// Bundles lib/index.js (compiled by tsc) into dist/ with ncc's API, so that this script decides
// exactly what dist/ holds: index.js, licenses.txt and package.json, nothing else.
//
// - No native code: ssh2 loads its optional addons (cpu-features, sshcrypto.node) in try/catch
//   and falls back to pure JavaScript. They are made externals with a name nothing resolves, so
//   the bundle never loads a binary and is the same whether `npm ci` built them or not.
// - No other assets: the files ncc would copy for path expressions (ssh2's Windows pagent.exe,
//   dockerode's BuildKit and gRPC .proto files) serve code paths the action never takes; the
//   expressions are left as they are, pointing at files that do not exist.
// - Any asset ncc still returns fails the build instead of landing in dist/.
// - ncc's ESM output has no __dirname/__filename, which ssh2's bundled code reads as it loads;
//   they are defined from import.meta.url right after the bundle's first import line.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';

const ncc = createRequire(import.meta.url)('@vercel/ncc');
const NO_NATIVE = 'deploy-action-bundles-no-native-addons';

const { code, assets } = await ncc(resolve('lib/index.js'), {
  externals: { 'cpu-features': NO_NATIVE, '/\\.node$/': NO_NATIVE },
  customEmit: () => false,
  license: 'licenses.txt',
  target: 'es2023',
  quiet: true,
});

const { 'licenses.txt': licenses, 'package.json': packageJson, ...unexpected } = assets;
if (!licenses || !packageJson) throw new Error('ncc returned no licenses.txt or package.json');
if (Object.keys(unexpected).length > 0) {
  throw new Error(`ncc would add files to dist/ besides index.js: ${Object.keys(unexpected).join(', ')}`);
}

const shim =
  "import { fileURLToPath as __deployActionFileURLToPath } from 'node:url';\n" +
  "import { dirname as __deployActionDirname } from 'node:path';\n" +
  'const __filename = __deployActionFileURLToPath(import.meta.url);\n' +
  'const __dirname = __deployActionDirname(__filename);\n';
if (code.includes('const __dirname = __deployActionDirname')) throw new Error('bundle already patched');
const firstLineEnd = code.indexOf('\n') + 1;

rmSync('dist', { recursive: true, force: true });
mkdirSync('dist');
writeFileSync('dist/index.js', code.slice(0, firstLineEnd) + shim + code.slice(firstLineEnd));
writeFileSync('dist/licenses.txt', licenses.source);
// { "type": "module" }: dist/index.js is ESM.
writeFileSync('dist/package.json', packageJson.source);
