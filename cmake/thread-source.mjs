// Run after linking the threaded module (node cmake/thread-source.mjs dist/imdn-mt.worker.js):
// writes dist/imdn-mt.thread.js, Emscripten's pthread script as the string it exports. Browsers
// start pthreads from a Blob of it (wasm/worker-mt.js): a bundler may inline a small script asset
// as a data: URL (Vite does under 4 KiB), and a data: worker has an opaque origin that cannot
// import the module's JavaScript on a cross-origin isolated page. A Blob URL keeps the page's.
import { readFileSync, writeFileSync } from 'node:fs';

const [from] = process.argv.slice(2);
const to = from.replace(/\.worker\.js$/, '.thread.js');
const source = readFileSync(from, 'utf8');
writeFileSync(to, `// Generated from ${from.split('/').pop()} by cmake/thread-source.mjs.\nexport default ${JSON.stringify(source)};\n`);
