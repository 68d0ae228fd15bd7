// Switch this app between the two current Next.js majors, then run `npm install`:
//   node use-next.mjs 15    Next.js 15: middleware.js (a copy of middleware.next15.js)
//   node use-next.mjs 16    Next.js 16, the default: proxy.js
// Next 16 renamed middleware to proxy (and refuses an app with both); Next 15 ignores proxy.js.
// Everything else in the app is the same on both.
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

const VERSIONS = { 15: '~15.5.29', 16: '~16.4.6' };
const major = process.argv[2];
if (!VERSIONS[major]) {
  console.error('usage: node use-next.mjs 15|16');
  process.exit(2);
}
const manifest = JSON.parse(readFileSync('package.json', 'utf8'));
manifest.dependencies.next = VERSIONS[major];
writeFileSync('package.json', `${JSON.stringify(manifest, null, 2)}\n`);
if (major === '15') copyFileSync('middleware.next15.js', 'middleware.js');
else rmSync('middleware.js', { force: true });
console.log(`next ${VERSIONS[major]}: now run npm install`);
