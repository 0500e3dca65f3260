// The pool of workers: each runs one message at a time, taken from one queue in turn by call;
// units may wait in a busy worker behind another; aborts, crashes and idle recycling. The
// messages are typed in protocol.d.ts.

/**
 * A worker whose instance holds more than this after a job (float32 maps of a mid-sized image,
 * say: they live inside it) is replaced once it has been idle for IDLE_MS, so that an idle
 * upscaler holds little without a batch of such images paying a fresh worker each.
 */
export const IDLE_RECYCLE_BYTES = 128 * 2 ** 20;
const IDLE_MS = 2000;

export class AbortError extends Error {}

/** The error an aborted call rejects with: a DOMException named AbortError where there is one. @param {AbortSignal} [signal] */
export function abortError(signal) {
  const reason = signal?.reason;
  if (typeof DOMException === 'function') {
    const e = new DOMException('imdn: upscale aborted', 'AbortError');
    if (reason !== undefined) Object.defineProperty(e, 'cause', { value: reason });
    return e;
  }
  const e = new AbortError('imdn: upscale aborted');
  e.name = 'AbortError';
  return e;
}

/**
 * @typedef {import('./protocol.js').ToWorker} ToWorker
 * @typedef {import('./protocol.js').FromWorker} FromWorker
 * @typedef {import('./protocol.js').UnitResult | import('./protocol.js').JobResult} Result
 * @typedef {import('./protocol.js').ProgressReply} ProgressReply
 * @typedef {import('./protocol.js').WorkerHandle} WorkerHandle
 * @typedef {{ message: import('./protocol.js').Unsent<ToWorker>, transfer?: Transferable[] }} Built
 * @typedef {{ build: () => Built, resolve: (m: Result) => void, reject: (e: Error) => void, signal?: AbortSignal,
 *   onProgress?: (m: ProgressReply) => void, cancel?: () => boolean, owner?: object, short?: boolean,
 *   onAbort?: () => void, settled?: boolean }} Task
 * @typedef {{ task: Task, id: number, held?: boolean }} Busy
 * @typedef {{ handle: WorkerHandle, busy: Busy[], idle?: ReturnType<typeof setTimeout> }} PoolWorker
 * @typedef {{ signal?: AbortSignal, onProgress?: (m: ProgressReply) => void, cancel?: () => boolean, owner?: object,
 *   short?: boolean }} RunOptions
 */

// Workers started when first needed, up to `size`; each runs one message at a time, taken from one
// queue in order. A worker busy with a short task (`short`: a unit) is sent the next short one
// before it finishes, so that it never waits for this thread to gather its next inputs (this
// thread gathers and scatters every unit: without this, each of them left the workers idle).
export class Pool {
  /**
   * @param {() => WorkerHandle} spawnWorker a fresh worker (Platform.spawnWorker, bound)
   * @param {number} size workers at most
   * @param {() => { message: import('./protocol.js').InitRequest, transfer: Transferable[] }} init the init
   *   message (a fresh model copy each time)
   */
  constructor(spawnWorker, size, init) {
    this.spawnWorker = spawnWorker; // () => handle (see spawnWorker in browser.js and node-platform.js)
    this.size = size;
    this.init = init; // () => { message, transfer }: the init message (a fresh model copy each time)
    /** @type {PoolWorker[]} */
    this.workers = [];
    /** @type {Task[]} */
    this.queue = [];
    this.nextId = 1;
    this.disposed = false;
    this.idleBytes = IDLE_RECYCLE_BYTES; // (Infinity: workers are never replaced for being idle)
  }

  /**
   * Runs one message on the next free worker; resolves with the worker's result message.
   * build() makes { message, transfer } when a worker is free (so that a unit's inputs are gathered
   * only then). onProgress(msg) gets the worker's progress messages. When the signal aborts while
   * the message runs, cancel() tells the worker to stop and returns true, or returns false (it
   * cannot be told: no shared memory) and the worker is terminated, so the CPU is free at once.
   * Tasks of different owners (calls) are taken in turn, so that concurrent calls share the pool.
   * @param {Task['build']} build
   * short: a task of one unit (no signal of its own: stopped with its owner), which may wait in a
   * busy worker behind another short one.
   * @param {RunOptions} [how]
   * @returns {Promise<Result>}
   */
  run(build, { signal, onProgress, cancel, owner, short = false } = {}) {
    return new Promise((resolve, reject) => {
      if (this.disposed) return reject(new Error('imdn: the upscaler was disposed'));
      if (signal?.aborted) return reject(abortError(signal));
      /** @type {Task} */
      const task = { build, resolve, reject, signal, onProgress, cancel, owner, short };
      task.onAbort = () => this.abort(task);
      signal?.addEventListener('abort', task.onAbort, { once: true });
      this.queue.push(task);
      this.pump();
    });
  }

  /** @param {Task} task @param {Error | null} error @param {Result} [value] */
  settle(task, error, value) {
    if (task.settled) return;
    task.settled = true;
    if (task.onAbort) task.signal?.removeEventListener('abort', task.onAbort);
    if (error) task.reject(error);
    else task.resolve(/** @type {Result} */ (value));
  }

  /**
   * Fails every task of `owner` with `error`: queued ones are dropped, running ones finish in
   * their worker (a unit is short) and their results are ignored.
   * @param {object} owner @param {Error} error
   */
  cancelOwner(owner, error) {
    const mine = this.queue.filter((t) => t.owner === owner);
    this.queue = this.queue.filter((t) => t.owner !== owner);
    for (const t of mine) this.settle(t, error);
    for (const w of this.workers) {
      for (const b of w.busy) if (b.task.owner === owner) this.settle(b.task, error);
    }
  }

  /** @param {Task} task */
  abort(task) {
    this.queue = this.queue.filter((t) => t !== task);
    const w = this.workers.find((x) => x.busy.some((b) => b.task === task));
    this.settle(task, abortError(task.signal));
    // Running: stopped at its next unit where it can be told so; terminated where it cannot.
    if (w && !(task.cancel?.() ?? true)) this.retire(w, null);
  }

  spawn() {
    const handle = this.spawnWorker();
    const w = { handle, busy: [], idle: undefined };
    handle.onMessage((/** @type {FromWorker} */ msg) => this.onMessage(w, msg));
    handle.onFailure((/** @type {string} */ message) => this.retire(w, `imdn: a worker crashed (${message}); it has been replaced`));
    const { message, transfer } = this.init();
    handle.post(message, transfer);
    this.workers.push(w);
    return w;
  }

  /** Starts the first worker now, idle (so that the first call finds it starting or ready). */
  warm() {
    if (!this.disposed && this.workers.length === 0) this.spawn().handle.setBusy(false);
  }

  pump() {
    while (!this.disposed && this.queue.length > 0) {
      // An idle worker, a new one, or one whose only task is short like the next one.
      const next = this.queue[0];
      let w = this.workers.find((x) => x.busy.length === 0);
      if (!w && this.workers.length < this.size) w = this.spawn();
      if (!w && next.short) w = this.workers.find((x) => x.busy.length === 1 && x.busy[0].task.short);
      if (!w) return;
      // The oldest task; its owner's other tasks then go behind everyone else's (round robin).
      const task = /** @type {Task} */ (this.queue.shift());
      if (task.owner) this.queue = [...this.queue.filter((t) => t.owner !== task.owner), ...this.queue.filter((t) => t.owner === task.owner)];
      let built;
      try {
        built = task.build();
      } catch (e) {
        this.settle(task, /** @type {Error} */ (e));
        continue;
      }
      const id = this.nextId++;
      // Behind another, a unit is held in the worker until that one's result is here (onMessage
      // then says go, or drop if its call stopped meanwhile): its bytes travel early, and a stop
      // costs at most the unit that was running. With a shared stop flag (`stop`: where memory
      // can be shared) it is not held: the worker reads the flag before it starts it.
      const held = w.busy.length > 0 && !('stop' in built.message && built.message.stop);
      clearTimeout(w.idle);
      w.busy.push({ task, id, held });
      w.handle.setBusy(true);
      w.handle.post(/** @type {ToWorker} */ ({ ...built.message, id, ...(held ? { held: true } : {}) }), built.transfer ?? []);
    }
  }

  /** @param {PoolWorker} w @param {FromWorker} msg */
  onMessage(w, msg) {
    if (msg.type === 'ready') return;
    if (msg.type === 'init-error') {
      this.retire(w, `imdn: a worker could not start: ${msg.message}`);
      return;
    }
    const busy = w.busy.find((b) => b.id === msg.id);
    if (!busy) return;
    if (msg.type === 'progress') {
      if (busy.task.settled) return;
      try {
        busy.task.onProgress?.(msg);
      } catch (e) {
        this.settle(busy.task, /** @type {Error} */ (e));
      }
      return;
    }
    w.busy = w.busy.filter((b) => b !== busy);
    w.handle.setBusy(w.busy.length > 0);
    // The unit held in this worker behind the one that finished: started at once (before this
    // thread scatters), or dropped if its call was stopped meanwhile.
    const held = w.busy[0];
    if (held?.held && !(msg.type === 'error' && msg.fatal)) {
      held.held = false;
      w.handle.post(/** @type {ToWorker} */ (held.task.settled ? { type: 'drop', id: held.id } : { type: 'go', id: held.id }), []);
    }
    if (msg.type === 'unit-result' || msg.type === 'job-result') {
      this.settle(busy.task, null, msg);
      // Its instance grew far beyond what most jobs need: a fresh worker next time; grew beyond
      // what an idle upscaler should hold: the same once it has stayed idle a while.
      const grew = msg.type === 'job-result' ? msg : null;
      if (grew?.recycle && w.busy.length === 0) return this.retire(w, null);
      if ((grew?.memoryBytes ?? 0) > this.idleBytes && w.busy.length === 0) {
        clearTimeout(w.idle);
        w.idle = setTimeout(() => {
          if (w.busy.length === 0) this.retire(w, null);
        }, IDLE_MS);
        w.idle.unref?.(); // (Node: an idle upscaler must not keep the process alive)
      }
    } else {
      this.settle(busy.task, new Error(msg.message));
      if (msg.fatal) this.retire(w, null);
    }
    this.pump();
  }

  // Removes a worker. With a message (it crashed), the task it was running fails with it; without
  // (its task was aborted or failed, and is settled) nothing does. Tasks waiting behind go back
  // to the head of the queue.
  /** @param {PoolWorker} w @param {string | null} message */
  retire(w, message) {
    if (!this.workers.includes(w)) return;
    this.workers = this.workers.filter((x) => x !== w);
    clearTimeout(w.idle);
    const busy = w.busy;
    w.busy = [];
    w.handle.terminate();
    if (message && busy.length > 0) this.settle(busy[0].task, new Error(message));
    this.queue.unshift(...busy.map((b) => b.task).filter((t) => !t.settled));
    this.pump();
  }

  dispose() {
    this.disposed = true;
    const gone = new Error('imdn: the upscaler was disposed');
    for (const w of this.workers) {
      clearTimeout(w.idle);
      w.handle.terminate();
      for (const b of w.busy) this.settle(b.task, gone);
    }
    for (const t of this.queue) this.settle(t, gone);
    this.workers = [];
    this.queue = [];
  }
}
