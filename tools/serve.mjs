#!/usr/bin/env node
// A small static server for the demo page: serves this repository on 127.0.0.1 so that
// /web/ (the page), /wasm/ and /dist/ (the package) and /build/models/ (converted models) load as
// they would from any static host.
//
//   node tools/serve.mjs [--port 8080]      then open http://127.0.0.1:8080/web/
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.imdn': 'application/octet-stream',
};

/**
 * Starts the server; resolves to { url, close }. port 0 picks a free one. isolate: false leaves
 * out the COOP/COEP headers, as most hosts do (no SharedArrayBuffer: no threads).
 */
export function serve({ root = ROOT, port = 8080, host = '127.0.0.1', isolate = true } = {}) {
  const server = createServer((req, res) => {
    let path;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      res.writeHead(400).end();
      return;
    }
    let file = normalize(join(root, path));
    if (file !== root && !file.startsWith(root + sep)) {
      res.writeHead(403).end();
      return;
    }
    try {
      if (statSync(file).isDirectory()) file = join(file, 'index.html');
      const size = statSync(file).size;
      res.writeHead(200, {
        'Content-Type': /** @type {Record<string, string>} */ (TYPES)[extname(file)] ?? 'application/octet-stream',
        'Content-Length': size,
        'Cache-Control': 'no-cache',
        // Cross-origin isolation, so that the page can use SharedArrayBuffer (threads).
        ...(isolate ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {}),
      });
      createReadStream(file).pipe(res);
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
    }
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      const url = `http://${host}:${/** @type {import('node:net').AddressInfo} */ (server.address()).port}/`;
      ok({ url, close: () => new Promise((done) => server.close(done)) });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--port');
  const port = i > 0 ? Number(process.argv[i + 1]) : 8080;
  const { url } = await serve({ port });
  console.log(`serving ${ROOT} at ${url}; the demo is at ${url}web/`);
}
