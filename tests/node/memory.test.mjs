// Memory: the budget (memoryLimit, memoryNeeded), float16 maps where float32 ones do not fit, and
// instances given back after a job that grew them. Random-weight models: any clone runs these.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { createUpscaler, encodePng, readImage } from '../../wasm/node.js';
import { ROOT, randomModel } from './helpers.mjs';

const x4 = randomModel('x4', 3);
const MiB = 2 ** 20;

function image(width, height, channels = 3, seed = 5) {
  let s = seed;
  const data = new Uint8Array(width * height * channels).map((_, i) => {
    s = (s * 1103515245 + 12345) >>> 0;
    const p = Math.floor(i / channels);
    return ((p % width) * 2 + Math.floor(p / width) * 3 + (s >>> 29)) & 255;
  });
  return { data, width, height, channels };
}

function maxLevelDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('memoryNeeded: float32 maps where they fit, float16 under a tighter limit, then recomputed blocks, refused below that', async () => {
  const up = await createUpscaler({ model: x4, workers: 1, tileSize: 128 });
  try {
    assert.equal(up.memoryLimit, 352 * MiB);
    const small = up.memoryNeeded(64, 64);
    assert.deepEqual([small.maps, small.recompute, small.fits, small.limit], ['float32', false, true, 352 * MiB]);
    // 1024x1024 at x4: the float32 maps alone are 768 MiB, float16 ones 384 MiB; x and acc in
    // float16 with the blocks recomputed (256 MiB) fit the default 352 MiB.
    // One instance runs the whole job, so the recomputed blocks stream down the image (no tiles'
    // halos); a pool of workers, which is sent tiles, plans them on tiles.
    const big = up.memoryNeeded(1024, 1024);
    assert.deepEqual([big.maps, big.recompute, big.streamed, big.fits], ['float16', true, true, true]);
    assert.ok(big.bytes <= 352 * MiB && big.bytes > 256 * MiB, `${big.bytes}`);
    assert.ok(big.float32Bytes > 768 * MiB, `${big.float32Bytes}`);
    const kept = up.memoryNeeded(1024, 1024, { memoryLimit: 512 * MiB });
    assert.deepEqual([kept.maps, kept.recompute], ['float16', false]);
    assert.ok(kept.bytes - big.bytes > 96 * MiB, `the concatenation map: ${kept.bytes - big.bytes} bytes`);
    const roomy = up.memoryNeeded(1024, 1024, { memoryLimit: 2 ** 31 });
    assert.deepEqual([roomy.maps, roomy.recompute], ['float32', false]);
    assert.equal(roomy.bytes, big.float32Bytes);
    // Alpha: a translucent image is a second pass; its planes and output count.
    assert.ok(up.memoryNeeded(300, 200, { channels: 4 }).bytes > up.memoryNeeded(300, 200).bytes);
    // 2048x2048 -> 8192x8192: refused under the default, saying what it needs.
    const huge = up.memoryNeeded(2048, 2048);
    assert.equal(huge.fits, false);
    assert.match(huge.why, /a 2048x2048 input needs \d+ MiB \(float16 maps, tiles of 64 px, blocks recomputed\), over the memory limit of 352 MiB/);
    // A limit above what one instance can hold (3 GiB in 32-bit WebAssembly) counts as that.
    const most = up.memoryNeeded(2048, 2048, { memoryLimit: 2 ** 42 });
    assert.deepEqual([most.limit, most.maps, most.fits], [3 * 2 ** 30, 'float16', true]);
    assert.throws(() => up.memoryNeeded(0, 5), RangeError);
    assert.throws(() => up.memoryNeeded(5, 5, { channels: 5 }), RangeError);
    assert.throws(() => up.memoryNeeded(5, 5, { memoryLimit: -1 }), RangeError);
  } finally {
    up.dispose();
  }
  await assert.rejects(createUpscaler({ model: x4, memoryLimit: 1000 }), /memoryLimit must be a whole number of bytes/);
  await assert.rejects(createUpscaler({ model: x4, memoryLimit: '512M' }), /memoryLimit/);
});

test('a limit below the need refuses before anything is allocated or started, with the size it needs', async () => {
  const up = await createUpscaler({ model: x4, workers: 2, memoryLimit: 8 * MiB });
  try {
    const before = up.engine.memoryBytes;
    const need = up.memoryNeeded(200, 160);
    assert.equal(need.fits, false);
    await assert.rejects(up.upscale(image(200, 160)), (e) => {
      assert.ok(e instanceof RangeError);
      assert.match(e.message, new RegExp(`a 200x160 input needs ${Math.ceil(need.bytes / MiB)} MiB .* over the memory limit of 8 MiB: raise memoryLimit`));
      assert.match(e.message, /with exact: false .* it needs \d+ MiB/);
      return true;
    });
    assert.ok(up.pool.workers.length <= 1 && up.pool.workers.every((w) => w.busy.length === 0), 'nothing was sent to a worker');
    assert.equal(up.engine.memoryBytes, before, 'the main instance did not grow');
    // The same call with room for it completes.
    const out = await up.upscale(image(200, 160), { memoryLimit: need.bytes * 2 });
    assert.equal(out.width, 800);
  } finally {
    up.dispose();
  }
});

// One image under `limit` on the pool and on threads: the pool's maps live in this thread's
// instance (its units, in any order, in the workers), whose memory is watched as the job runs; the
// same bytes on both paths, within one level of float32 maps (and something rounded).
async function underLimit(pool, threaded, img, limit, what) {
  // (Float16 maps and the output live outside the instance, in ArrayBuffers it counts.)
  const held = () => pool.engine.memoryBytes + pool.engine.externalBytes.now;
  const start = held();
  let most = start;
  let tiles = 0;
  const onProgress = ({ tile }) => {
    most = Math.max(most, held());
    if (tile) tiles++;
  };
  const a = await pool.upscale(img, { memoryLimit: limit, onProgress });
  assert.ok(most - start <= limit, `${what}: the instance and its buffers grew by ${most - start} bytes, over the ${limit}-byte limit`);
  assert.ok(pool.engine.externalBytes.most > 0, `${what}: the maps were held outside the instance`);
  assert.equal(pool.engine.externalBytes.now, 0, `${what}: every buffer outside the instance given back`);
  assert.ok(tiles > 1, `${what}: progress named the output tiles`);
  const b = await threaded.upscale(img, { memoryLimit: limit });
  assert.deepEqual(Buffer.from(b.data), Buffer.from(a.data), `threads and pool give the same bytes with ${what}`);
  const d = maxLevelDiff(a.data, (await pool.upscale(img)).data);
  assert.ok(d >= 1 && d <= 1, `${what} are within one level of float32 maps (and round something): ${d}`);
}

test('a limit that only float16 maps fit: completes under it, on threads and on the pool, with the same bytes, within a level of float32', async () => {
  const img = image(240, 180);
  const threaded = await createUpscaler({ model: x4, workers: 2, threads: true, tileSize: 64 });
  const pool = await createUpscaler({ model: x4, workers: 2, threads: false, tileSize: 64 });
  try {
    const f32 = pool.memoryNeeded(240, 180);
    assert.equal(f32.maps, 'float32');
    const half = pool.memoryNeeded(240, 180, { memoryLimit: f32.bytes - 1 });
    assert.equal(half.maps, 'float16');
    assert.ok(half.bytes < f32.bytes);
    await underLimit(pool, threaded, img, half.bytes + MiB, 'float16 maps');
  } finally {
    threaded.dispose();
    pool.dispose();
  }
});

test('an RGBA image whose alpha is 255 everywhere is planned and run as RGB: it fits where a translucent one of its size is refused', async () => {
  const up = await createUpscaler({ model: x4, workers: 1, tileSize: 128 });
  try {
    // The least an RGB 96x80 image can be planned in (a refused plan names the least), as the limit.
    const least = up.memoryNeeded(96, 80, { memoryLimit: MiB });
    assert.equal(least.fits, false);
    const limit = least.bytes;
    assert.equal(up.memoryNeeded(96, 80, { memoryLimit: limit }).fits, true);
    assert.equal(up.memoryNeeded(96, 80, { channels: 4, memoryLimit: limit }).fits, false);
    const rgb = image(96, 80, 3);
    const rgba = { data: new Uint8Array(96 * 80 * 4), width: 96, height: 80, channels: 4 };
    for (let p = 0; p < 96 * 80; p++) rgba.data.set([...rgb.data.subarray(p * 3, p * 3 + 3), 255], p * 4);
    const fromRgba = await up.upscale(rgba, { memoryLimit: limit });
    const fromRgb = await up.upscale(rgb, { memoryLimit: limit });
    assert.deepEqual(fromRgba.data, fromRgb.data);
    // One translucent pixel: alpha is a pass of its own, and the image no longer fits.
    rgba.data[4 * 17 + 3] = 254;
    await assert.rejects(up.upscale(rgba, { memoryLimit: limit }), /over the memory limit/);
  } finally {
    up.dispose();
  }
});

test('a limit that only recomputed blocks fit: completes under it, on threads and on the pool, with the same bytes, within a level of float32', async () => {
  // (Large enough that the maps outweigh a tile's scratch, which is larger when it recomputes.)
  const img = image(400, 360);
  const threaded = await createUpscaler({ model: x4, workers: 2, threads: true, tileSize: 64 });
  const pool = await createUpscaler({ model: x4, workers: 2, threads: false, tileSize: 64 });
  try {
    const kept = pool.memoryNeeded(400, 360, { memoryLimit: pool.memoryNeeded(400, 360).bytes - 1 });
    assert.deepEqual([kept.maps, kept.recompute], ['float16', false]);
    const plan = pool.memoryNeeded(400, 360, { memoryLimit: kept.bytes - 1 });
    assert.deepEqual([plan.maps, plan.recompute, plan.streamed, plan.fits], ['float16', true, false, true]);
    // (The threaded instance streams them instead: the same bytes, checked below.)
    const streamed = threaded.memoryNeeded(400, 360, { memoryLimit: plan.bytes + MiB });
    assert.deepEqual([streamed.recompute, streamed.streamed], [true, true]);
    assert.ok(plan.bytes < kept.bytes);
    await underLimit(pool, threaded, img, plan.bytes + MiB, 'recomputed blocks');
  } finally {
    threaded.dispose();
    pool.dispose();
  }
});

test('a worker left holding more than 128 MiB is replaced once idle for 2 s, not while calls keep coming', async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const up = await createUpscaler({ model: x4, workers: 2, threads: true });
  try {
    const big = await up.upscale(image(400, 400)); // (float32 maps inside the instance: ~200 MiB)
    const [first] = up.pool.workers;
    assert.ok(first, 'kept right after the call');
    await sleep(1200);
    await up.upscale(image(64, 64));
    assert.equal(up.pool.workers[0], first, 'the same worker serves a call within the idle time');
    await sleep(1200);
    assert.equal(up.pool.workers[0], first, 'the idle time counts from the last call');
    await sleep(1300);
    assert.equal(up.pool.workers.length, 0, 'replaced once idle');
    const again = await up.upscale(image(400, 400));
    assert.deepEqual(Buffer.from(again.data), Buffer.from(big.data), 'a fresh worker, the same bytes');
  } finally {
    up.dispose();
  }
  const small = await createUpscaler({ model: x4, workers: 2, threads: true });
  const never = await createUpscaler({ model: x4, workers: 2, threads: true, recycleBytes: Infinity });
  try {
    await small.upscale(image(64, 64));
    await never.upscale(image(400, 400));
    await sleep(2500);
    assert.equal(small.pool.workers.length, 1, 'a worker holding little is kept');
    assert.equal(never.pool.workers.length, 1, 'recycleBytes: Infinity keeps even a grown worker');
  } finally {
    small.dispose();
    never.dispose();
  }
});

test('an instance that grew past recycleBytes is replaced after its job; the next call gives the same bytes', async () => {
  const img = image(96, 64);
  // Threads: the worker whose instance grew is retired, and a fresh one serves the next call.
  const up = await createUpscaler({ model: x4, workers: 2, threads: true, recycleBytes: 0 });
  const keep = await createUpscaler({ model: x4, workers: 2, threads: true });
  try {
    const first = await up.upscale(img);
    assert.equal(up.pool.workers.length, 0, 'the grown worker is gone');
    const second = await up.upscale(img);
    assert.deepEqual(Buffer.from(second.data), Buffer.from(first.data));
    await keep.upscale(img);
    assert.equal(keep.pool.workers.length, 1, 'a small job keeps its worker under the default');
  } finally {
    up.dispose();
    keep.dispose();
  }
  // The pool: this thread's instance holds the maps, and is replaced between calls.
  const pool = await createUpscaler({ model: x4, workers: 2, threads: false, recycleBytes: 0 });
  try {
    const engine = pool.engine;
    const first = await pool.upscale(img);
    await pool.recycling;
    assert.notEqual(pool.engine, engine, 'a fresh main instance');
    assert.equal(engine.engine, null, 'the old engine was deleted');
    const second = await pool.upscale(img);
    assert.deepEqual(Buffer.from(second.data), Buffer.from(first.data));
  } finally {
    pool.dispose();
  }
});

test('the CLI takes --memory-limit (MiB) and says what a refused image needs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'imdn-mem-'));
  try {
    const input = join(dir, 'in.png');
    writeFileSync(input, await encodePng(image(160, 120)));
    const cli = (limit) =>
      spawnSync(process.execPath, [join(ROOT, 'wasm', 'cli.js'), input, '-o', join(dir, 'out.png'), '--model', x4, '-q', '--memory-limit', limit], {
        encoding: 'utf8',
      });
    const refused = cli('2');
    assert.equal(refused.status, 1, refused.stderr);
    assert.match(refused.stderr, /a 160x120 input needs \d+ MiB .* over the memory limit of 2 MiB/);
    assert.equal(existsSync(join(dir, 'out.png')), false);
    const ok = cli('512');
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal((await readImage(join(dir, 'out.png'))).width, 640);
    assert.equal(cli('lots').status, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('watched calls (onProgress) build the result from the tiles alone, the same bytes as unwatched ones', async () => {
  const rgba = image(70, 52, 4, 9);
  for (let p = 0; p < 70 * 52; p++) rgba.data[p * 4 + 3] = (p * 7) % 256; // translucent: a second pass
  for (const threads of [true, false]) {
    const up = await createUpscaler({ model: x4, workers: 2, threads, tileSize: 32 });
    try {
      for (const input of [rgba, image(66, 50)]) {
        const plain = await up.upscale(input);
        let tiles = 0;
        const watched = await up.upscale(input, { onProgress: (p) => (tiles += p.tile ? 1 : 0) });
        assert.ok(tiles > 1);
        assert.deepEqual(Buffer.from(watched.data), Buffer.from(plain.data), `threads ${threads}, ${input.channels} channels`);
        const raw = await up.upscale(input, { raw: true });
        const rawWatched = await up.upscale(input, { raw: true, onProgress: () => {} });
        assert.deepEqual(Buffer.from(rawWatched.data.buffer), Buffer.from(raw.data.buffer));
      }
    } finally {
      up.dispose();
    }
  }
});
