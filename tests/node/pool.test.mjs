// The worker pool on its own (wasm/core.js Pool), with fake workers whose messages the test
// answers by hand: which worker gets what, and when.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Pool } from '../../wasm/core.js';

// Workers that record what they are posted; the test answers with reply(worker, message).
function fakes() {
  const made = [];
  const spawn = () => {
    const w = { posted: [], terminated: false, listen: null, fail: null };
    made.push(w);
    return {
      post: (m) => w.posted.push(m),
      onMessage: (f) => {
        w.listen = f;
      },
      onFailure: (f) => {
        w.fail = f;
      },
      setBusy: () => {},
      terminate: () => {
        w.terminated = true;
      },
    };
  };
  const units = (w) => w.posted.filter((m) => m.type === 'unit');
  const sent = (w) => units(w).map((m) => m.n);
  return { made, spawn, units, sent };
}

// The real worker loop (worker-core.js) with no engine behind it: what it answers to messages.
async function run(messages) {
  const { serve } = await import('../../wasm/worker-core.js');
  const out = [];
  let listener;
  serve({ post: (m) => out.push(m), listen: (f) => (listener = f) }, async () => ({}));
  for (const m of messages) listener(m);
  await new Promise((r) => setTimeout(r, 20));
  return out;
}

const init = () => ({ message: { type: 'init' } });
const unit = (n) => () => ({ message: { type: 'unit', n } });
const answer = (w, m) => w.listen({ type: 'unit-result', id: m.id, data: m.n });

test('a busy worker is sent the next short unit before it finishes, never a second long job', async () => {
  const { made, spawn, units, sent } = fakes();
  const pool = new Pool(spawn, 1, init);
  const owner = {};
  const a = pool.run(unit(1), { owner, short: true });
  const b = pool.run(unit(2), { owner, short: true });
  const c = pool.run(unit(3), { owner, short: true });
  // Two in flight (the second waits in the worker), the third still here.
  assert.deepEqual(sent(made[0]), [1, 2]);
  answer(made[0], units(made[0])[0]);
  assert.equal((await a).data, 1);
  assert.deepEqual(sent(made[0]), [1, 2, 3]);
  answer(made[0], units(made[0])[1]);
  answer(made[0], units(made[0])[2]);
  assert.deepEqual([(await b).data, (await c).data], [2, 3]);

  // A whole job (not short) waits for an idle worker, and nothing is put behind it.
  const whole = pool.run(unit(4));
  const next = pool.run(unit(5), { owner, short: true });
  assert.deepEqual(sent(made[0]), [1, 2, 3, 4]);
  answer(made[0], units(made[0])[3]);
  await whole;
  assert.deepEqual(sent(made[0]), [1, 2, 3, 4, 5]);
  answer(made[0], units(made[0])[4]);
  await next;
  pool.dispose();
});

test('a worker that crashes fails the unit it ran; the one waiting behind it runs on its replacement', async () => {
  const { made, spawn, units, sent } = fakes();
  const pool = new Pool(spawn, 1, init);
  const a = pool.run(unit(1), { short: true });
  const b = pool.run(unit(2), { short: true });
  assert.deepEqual(sent(made[0]), [1, 2]);
  made[0].fail('out of memory');
  await assert.rejects(a, /a worker crashed \(out of memory\)/);
  assert.ok(made[0].terminated);
  assert.equal(made.length, 2, 'a replacement worker is started');
  assert.deepEqual(sent(made[1]), [2]);
  answer(made[1], units(made[1])[0]);
  assert.equal((await b).data, 2);
  pool.dispose();
});

test('a fatal error in a unit fails that unit only; an owner cancelled drops its waiting units', async () => {
  const { made, spawn, units, sent } = fakes();
  const pool = new Pool(spawn, 1, init);
  const mine = {};
  const a = pool.run(unit(1), { short: true });
  const b = pool.run(unit(2), { short: true });
  const c = pool.run(unit(3), { owner: mine, short: true });
  made[0].listen({ type: 'error', id: units(made[0])[0].id, message: 'trap', fatal: true });
  await assert.rejects(a, /trap/);
  assert.deepEqual(sent(made[1]), [2, 3]);
  pool.cancelOwner(mine, new Error('stopped'));
  await assert.rejects(c, /stopped/);
  answer(made[1], units(made[1])[1]); // a late result of a cancelled unit is ignored
  answer(made[1], units(made[1])[0]);
  assert.equal((await b).data, 2);
  pool.dispose();
});

test('a unit behind another is held in the worker: go when that one is done, drop if its call stopped', async () => {
  const { made, spawn, units } = fakes();
  const pool = new Pool(spawn, 1, init);
  const job = {};
  const a = pool.run(unit(1), { owner: job, short: true });
  const b = pool.run(unit(2), { owner: job, short: true });
  const [first, second] = units(made[0]);
  assert.equal(first.held, undefined, 'the first goes to an idle worker and runs');
  assert.equal(second.held, true, 'the second is held behind it');
  answer(made[0], first);
  assert.deepEqual(made[0].posted.at(-1), { type: 'go', id: second.id });
  answer(made[0], second);
  await Promise.all([a, b]);

  const c = pool.run(unit(3), { owner: job, short: true });
  const d = pool.run(unit(4), { owner: job, short: true });
  const [third, fourth] = units(made[0]).slice(2);
  pool.cancelOwner(job, new Error('stopped'));
  await assert.rejects(c, /stopped/);
  await assert.rejects(d, /stopped/);
  answer(made[0], third); // the one running finishes; the held one is dropped, never run
  assert.deepEqual(made[0].posted.at(-1), { type: 'drop', id: fourth.id });
  made[0].listen({ type: 'error', id: fourth.id, message: 'imdn: dropped', fatal: false });
  const e = pool.run(unit(5), { short: true });
  assert.equal(units(made[0]).at(-1).held, undefined, 'the worker is free at once for the next call');
  answer(made[0], units(made[0]).at(-1));
  await e;
  pool.dispose();
});

test('a worker keeps a held unit until go, and forgets it on drop', async () => {
  const held = { type: 'unit', id: 7, data: new Uint8Array(4), held: true };
  assert.deepEqual(await run([held]), [], 'held: nothing happens');
  assert.deepEqual(await run([held, { type: 'drop', id: 7 }]), [{ type: 'error', id: 7, message: 'imdn: dropped', fatal: false }]);
  // Go: it runs (this worker has no engine, so running it says so).
  const ran = await run([held, { type: 'go', id: 7 }]);
  assert.match(ran[0].message, /before init/);
});

test('with a shared stop flag a unit is not held, and the worker skips it once the flag is set', async () => {
  const { made, spawn, units } = fakes();
  const pool = new Pool(spawn, 1, init);
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const flagged = (n) => () => ({ message: { type: 'unit', n, stop } });
  const a = pool.run(flagged(1), { short: true });
  const b = pool.run(flagged(2), { short: true });
  assert.equal(units(made[0])[1].held, undefined, 'sent to run as soon as the worker is free');
  answer(made[0], units(made[0])[0]);
  answer(made[0], units(made[0])[1]);
  await Promise.all([a, b]);
  pool.dispose();

  Atomics.store(stop, 0, 1);
  assert.deepEqual(await run([{ type: 'unit', id: 9, data: new Uint8Array(4), stop }]), [{ type: 'error', id: 9, message: 'imdn: dropped', fatal: false }]);
});
