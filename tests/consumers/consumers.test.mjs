// The package as users get it: `npm pack`, then the tarball installed into fresh apps (Vite 8 and 6,
// webpack 5, esbuild, Rollup, a plain import map page, Node ESM and CommonJS, TypeScript for
// Node, the DOM and CommonJS), each built with its default configuration and run: the web apps in
// headless Chromium with and without cross-origin isolation (threads, and the pool of workers).
// publint and @arethetypeswrong/cli check the tarball itself.
//
// The bundlers and checkers are this repository's pinned dev dependencies (package-lock.json), put
// into each app's node_modules as links, so that nothing is downloaded here (CI is offline).
// With ../shared, the apps upscale Set5 butterfly with the authors' x4 checkpoint (the .pth file as
// it is) and must score its Y-PSNR; without, a random-weight x4 model (tests' imdn-random-model)
// and an image of noise, and the apps must give the bytes the repository's own Node entry gives.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { ENGINES, launch } from '../../tools/browsers.mjs';
import { CHROMIUM, launchChromium } from '../../tools/chromium.mjs';
import { serve } from '../../tools/serve.mjs';
import { createUpscaler, encodePng, readImage } from '../../wasm/node.js';
import { IMDN, NATIVE_BIN, ROOT, psnrY } from '../node/helpers.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const NODE = process.env.IMDN_CONSUMER_NODE ?? process.execPath;
const BIN = join(ROOT, 'node_modules');
const tmp = mkdtempSync(join(tmpdir(), 'imdn-consumers-'));

// The model and image every app upscales, and what its result must be.
const official = existsSync(join(IMDN, 'checkpoints', 'IMDN_x4.pth')) && existsSync(join(IMDN, 'datasets', 'Set5_LR', 'x4', 'butterflyx4.bmp'));
const MODEL = join(tmp, official ? 'model.pth' : 'model.imdn');
const IMAGE = join(tmp, 'input.png');
let expected; // (result) => void, asserts

function run(cmd, args, cwd, env = {}) {
  const r = spawnSync(cmd, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${[cmd, ...args].join(' ')} (in ${cwd}) failed with ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

let tarball;
before(async () => {
  // npm pack needs the built modules (tools/test.sh builds them first).
  const out = run('npm', ['pack', '--json', '--pack-destination', tmp], ROOT);
  tarball = join(tmp, JSON.parse(out)[0].filename);

  if (official) {
    cpSync(join(IMDN, 'checkpoints', 'IMDN_x4.pth'), MODEL);
    const lr = await readImage(join(IMDN, 'datasets', 'Set5_LR', 'x4', 'butterflyx4.bmp'));
    writeFileSync(IMAGE, await encodePng(lr));
    const hr = await readImage(join(IMDN, 'datasets', 'Set5_HR', 'butterfly.bmp'));
    const ref = await readImage(join(IMDN, 'reference', 'IMDN_x4_butterfly_SR.png'));
    const want = psnrY(ref, hr, 4);
    expected = (r) => {
      assert.deepEqual([r.width, r.height], [256, 256]);
      const got = psnrY(r, hr, 4);
      assert.ok(Math.abs(got - 28.559) < 0.01 && Math.abs(got - want) < 0.01, `Y-PSNR ${got.toFixed(4)} dB, official ${want.toFixed(4)} dB`);
    };
  } else {
    run(join(NATIVE_BIN, 'tests', 'imdn-random-model'), ['x4', MODEL, '7'], ROOT);
    const w = 40;
    const h = 28;
    const data = new Uint8Array(w * h * 3).map((_, i) => (i * 7919 + (i >> 5) * 31) % 251);
    writeFileSync(IMAGE, await encodePng({ data, width: w, height: h, channels: 3 }));
    const up = await createUpscaler({ model: MODEL, workers: 1 });
    const want = await up.upscale(IMAGE);
    up.dispose();
    expected = (r) => {
      assert.deepEqual([r.width, r.height], [want.width, want.height]);
      let worst = 0;
      for (let i = 0; i < want.data.length; i++) worst = Math.max(worst, Math.abs(r.data[i] - want.data[i]));
      assert.ok(worst <= 1, `differs from the Node entry by up to ${worst} levels`);
    };
  }
});

// A fresh app from tests/consumers/<template>: the tarball installed by npm, the named dev
// dependencies of this repository linked beside it.
function app(template, tools = []) {
  const dir = join(tmp, `${template}-${Math.random().toString(36).slice(2, 8)}`);
  cpSync(join(HERE, template), dir, { recursive: true });
  run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--no-package-lock', tarball], dir);
  for (const t of tools) {
    const link = join(dir, 'node_modules', t);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(join(BIN, t), link, 'dir');
  }
  return dir;
}

describe('the tarball', () => {
  test('holds what it must and nothing else: code, types, modules, LICENSE, no weights', () => {
    const list = run('tar', ['-tzf', tarball], tmp)
      .trim()
      .split('\n')
      .map((f) => f.replace(/^package\//, ''));
    for (const f of [
      'LICENSE',
      'README.md',
      'THIRD_PARTY_LICENSES.md',
      'package.json',
      'dist/imdn.wasm',
      'dist/imdn-mt.wasm',
      'dist/imdn-mt.worker.js',
      'dist/imdn-mt.thread.js',
      'wasm/browser.js',
      'wasm/node.js',
      'wasm/index.cjs',
      'wasm/browser.d.ts',
      'wasm/node.d.ts',
      'wasm/index.d.cts',
      'wasm/worker.js',
      'wasm/worker-mt.js',
      'wasm/worker-node.js',
    ]) {
      assert.ok(list.includes(f), `${f} is in the tarball`);
    }
    assert.deepEqual(
      list.filter((f) => /\.(pth|imdn|onnx|npy|symbols)$|^(build|tests|src|node_modules)\//.test(f)),
      [],
    );
    const size = statSync(tarball).size;
    assert.ok(size < 1.5 * 2 ** 20, `tarball of ${size} bytes`);
    console.log(`# tarball ${(size / 1024).toFixed(0)} KiB, ${list.length} files`);
  });

  test('publint finds nothing', () => {
    const out = run(NODE, [join(BIN, 'publint', 'src', 'cli.js'), '--strict', tarball], tmp);
    assert.doesNotMatch(out, /warning|error|suggestion/i, out);
  });

  test('@arethetypeswrong/cli finds nothing', () => {
    // The two .wasm subpaths are assets (for a bundler's ?url import), not modules with types.
    const assets = ['imdn-wasm/imdn.wasm', 'imdn-wasm/imdn-mt.wasm'];
    const out = run(
      NODE,
      [join(BIN, '@arethetypeswrong', 'cli', 'dist', 'index.js'), '--format', 'ascii', '--exclude-entrypoints', ...assets, '--', tarball],
      tmp,
    );
    assert.match(out, /No problems found/, out);
  });

  test('npm publish --dry-run is clean', () => {
    const r = spawnSync('npm', ['publish', '--dry-run', '--offline', tarball], { cwd: tmp, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    // Not being logged in to the registry is the one warning a dry run here may give.
    const warnings = r.stderr.split('\n').filter((l) => /npm warn/i.test(l) && !/requires you to be logged in/.test(l));
    assert.deepEqual(warnings, []);
    assert.match(r.stdout + r.stderr, /imdn-wasm@0\.1\.0/);
  });
});

describe('TypeScript consumers (strict, no skipLibCheck)', () => {
  for (const [name, tools] of [
    ['ts-node', ['typescript', '@types/node']],
    ['ts-dom', ['typescript']],
    ['ts-cjs', ['typescript', '@types/node']],
  ]) {
    test(`${name} type-checks, and the wrong entry's exports are errors`, () => {
      const dir = app(name, tools);
      run(NODE, [join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], dir);
    });
  }
});

describe('Node consumers', () => {
  for (const [name, file] of [
    ['node-esm', 'app.mjs'],
    ['node-cjs', 'app.cjs'],
  ]) {
    test(`${name}: ${file} upscales a file to a PNG`, async () => {
      const dir = app(name);
      const out = join(dir, 'out.png');
      const report = JSON.parse(run(NODE, [file, MODEL, IMAGE, out], dir));
      assert.equal(report.simd, true);
      assert.deepEqual(report.names, ['x2', 'x3', 'x4', 'as', 'rtc', 'rte']);
      assert.equal(report.threads, 2, 'Node runs two threads of one instance');
      expected(await readImage(out));
    });
  }
});

// Web apps: built into a folder that is served as a static site (with the model and image).
const builds = {
  vite8: (dir) => {
    run(NODE, [join(dir, 'node_modules', 'vite', 'bin', 'vite.js'), 'build'], dir);
    return { root: join(dir, 'dist') };
  },
  vite6: (dir) => {
    run(NODE, [join(dir, 'node_modules', 'vite6', 'bin', 'vite.js'), 'build'], dir);
    return { root: join(dir, 'dist') };
  },
  webpack: (dir) => {
    run(NODE, [join(dir, 'node_modules', 'webpack-cli', 'bin', 'cli.js')], dir);
    writeFileSync(join(dir, 'dist', 'index.html'), '<!doctype html><body data-state="loading"><script src="main.js"></script></body>');
    return { root: join(dir, 'dist') };
  },
  esbuild: (dir) => {
    run(NODE, [join(dir, 'node_modules', 'esbuild', 'bin', 'esbuild'), 'src/index.js', '--bundle', '--format=esm', '--outdir=dist'], dir);
    return pageWithBase(dir);
  },
  rollup: (dir) => {
    run(
      NODE,
      [
        join(dir, 'node_modules', 'rollup', 'dist', 'bin', 'rollup'),
        'src/index.js',
        '--dir',
        'dist',
        '--format',
        'es',
        '--plugin',
        '@rollup/plugin-node-resolve',
      ],
      dir,
    );
    return pageWithBase(dir);
  },
  importmap: (dir) => {
    writeFileSync(
      join(dir, 'importmap.html'),
      '<!doctype html><script type="importmap">{ "imports": { "imdn-wasm": "./node_modules/imdn-wasm/wasm/browser.js" } }</script>' +
        '<body data-state="loading"><script type="module" src="./src/index.js"></script></body>',
    );
    return { root: dir, page: 'importmap.html' };
  },
};
// esbuild and Rollup leave new URL(..., import.meta.url) alone: the app serves the package's
// folder as it is installed and says where (README, "Bundlers").
function pageWithBase(dir) {
  cpSync(join(dir, 'node_modules', 'imdn-wasm'), join(dir, 'dist', 'imdn-wasm'), { recursive: true, dereference: true });
  writeFileSync(join(dir, 'dist', 'index.html'), '<!doctype html><body data-state="loading"><script type="module" src="index.js"></script></body>');
  return { root: join(dir, 'dist'), base: '/imdn-wasm/' };
}
const tools = {
  vite8: ['vite'],
  vite6: ['vite6'],
  webpack: ['webpack', 'webpack-cli'],
  esbuild: ['esbuild'],
  rollup: ['rollup', '@rollup/plugin-node-resolve'],
  importmap: [],
};

// In the page of a consumer app: its state once it is done, and its result.
async function appResult() {
  const end = performance.now() + 120_000;
  while (!['done', 'error'].includes(document.body.dataset.state) && performance.now() < end) await new Promise((r) => setTimeout(r, 50));
  return { state: document.body.dataset.state, error: document.body.dataset.error, result: globalThis.result };
}

describe('web apps in headless Chromium, then Firefox ESR and WebKitGTK', { skip: !existsSync(CHROMIUM) && `no ${CHROMIUM}` }, () => {
  let browser;
  // The other engines this machine has (tools/test.sh installs them; tools/browsers.mjs).
  const others = [];
  before(async () => {
    browser = await launchChromium();
    for (const name of ['firefox', 'webkit']) if (ENGINES[name].has()) others.push(await launch(/** @type {any} */ (name)));
  });
  after(async () => {
    await browser?.close();
    for (const b of others) await b.close();
  });

  test('vite8 dev server (no config): upscales on the pool; with COOP/COEP headers, on threads', async () => {
    const dir = app('web', ['vite']);
    mkdirSync(join(dir, 'public'));
    cpSync(MODEL, join(dir, 'public', basename(MODEL)));
    cpSync(IMAGE, join(dir, 'public', 'input.png'));
    for (const isolate of [false, true]) {
      if (isolate) {
        writeFileSync(
          join(dir, 'vite.config.js'),
          "export default { server: { headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } } };\n",
        );
      }
      const port = 5200 + Math.floor(Math.random() * 700);
      const dev = spawn(NODE, [join(dir, 'node_modules', 'vite', 'bin', 'vite.js'), '--port', String(port), '--strictPort', '--host', '127.0.0.1'], {
        cwd: dir,
      });
      const page = await browser.newPage();
      try {
        await new Promise((ok, fail) => {
          let out = '';
          dev.stdout.on('data', (d) => {
            out += d;
            if (/ready in/.test(out)) ok();
          });
          dev.on('exit', (code) => fail(new Error(`vite dev exited with ${code}: ${out}`)));
        });
        const query = new URLSearchParams({ model: `/${basename(MODEL)}`, image: '/input.png', workers: '2' });
        await page.goto(`http://127.0.0.1:${port}/?${query}`);
        await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 120_000 });
        const state = await page.evaluate(() => [document.body.dataset.state, document.body.dataset.error]);
        assert.equal(state[0], 'done', `vite dev: ${state[1]}`);
        const r = await page.evaluate(() => window.result);
        assert.deepEqual([r.threads, r.workers], isolate ? [2, 1] : [1, 2]);
        expected({ width: r.width, height: r.height, channels: 4, data: new Uint8Array(Buffer.from(r.data, 'base64')) });
      } finally {
        await page.close();
        dev.kill();
      }
    }
  });

  for (const [name, build] of Object.entries(builds)) {
    test(`${name}: built with its defaults, upscales with threads (isolated page) and with the pool (plain page), in every engine`, async () => {
      const dir = app('web', tools[name]);
      const site = build(dir);
      cpSync(MODEL, join(site.root, basename(MODEL)));
      cpSync(IMAGE, join(site.root, 'input.png'));
      for (const isolate of [true, false]) {
        const server = await serve({ root: site.root, port: 0, isolate });
        const page = await browser.newPage();
        const errors = [];
        page.on('pageerror', (e) => errors.push(e.message));
        page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
        try {
          const query = new URLSearchParams({ model: basename(MODEL), image: 'input.png', workers: '2', ...(site.base ? { base: site.base } : {}) });
          await page.goto(`${server.url}${site.page ?? ''}?${query}`);
          await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 120_000 });
          const state = await page.evaluate(() => [document.body.dataset.state, document.body.dataset.error]);
          assert.equal(state[0], 'done', `${name} (${isolate ? 'isolated' : 'plain'} page): ${state[1]} ${errors.join(' | ')}`);
          const r = await page.evaluate(() => window.result);
          assert.deepEqual([r.threads, r.workers], isolate ? [2, 1] : [1, 2], 'threads where the page is isolated, else two workers');
          assert.ok(r.progress > 0);
          expected({ width: r.width, height: r.height, channels: 4, data: new Uint8Array(Buffer.from(r.data, 'base64')) });
        } finally {
          await page.close();
          await server.close();
        }
      }
      // The same app in Firefox and WebKitGTK (which has no SharedArrayBuffer, isolated or not: the pool).
      for (const other of others) {
        for (const isolate of [true, false]) {
          const server = await serve({ root: site.root, port: 0, isolate });
          try {
            const query = new URLSearchParams({ model: basename(MODEL), image: 'input.png', workers: '2', ...(site.base ? { base: site.base } : {}) });
            const where = `${name} in ${other.name} (${isolate ? 'isolated' : 'plain'} page)`;
            // Firefox has been seen, now and then and never twice in a row, to leave a page that
            // loads the package at 'loading' for good (as engines.test.mjs's patiently() says):
            // such a page is opened once more, saying so; a second hang, or an error, fails.
            let got;
            for (let attempt = 1; ; attempt++) {
              await other.open(`${server.url}${site.page ?? ''}?${query}`);
              got = await other.evaluate(appResult);
              if (['done', 'error'].includes(got.state) || attempt === 2) break;
              console.log(`# ${where}: still '${got.state}' after 120 s, attempt ${attempt}: opened once more`);
            }
            const { state, error, result: r } = got;
            assert.equal(state, 'done', `${where}: ${error}`);
            assert.deepEqual([r.threads, r.workers], isolate && other.name !== 'webkit' ? [2, 1] : [1, 2], where);
            expected({ width: r.width, height: r.height, channels: 4, data: new Uint8Array(Buffer.from(r.data, 'base64')) });
          } finally {
            await server.close();
          }
        }
      }
    });
  }
});

after(() => {
  // Left for inspection when something failed; small otherwise.
  if (process.exitCode) console.log(`# consumer apps in ${tmp}`);
  else for (const d of readdirSync(tmp)) if (d.startsWith('web-')) execFileSync('rm', ['-rf', join(tmp, d)]);
});
