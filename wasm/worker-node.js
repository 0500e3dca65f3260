// A worker_threads worker of the pool under Node: the single-threaded module, or the threaded one
// whose pthreads are worker_threads made to look like Web Workers (node-threads.js).
import { parentPort } from 'node:worker_threads';

import createImdnModule from '../dist/imdn.js';
import createImdnThreadedModule from '../dist/imdn-mt.js';
import { installWorkerShim } from './node-threads.js';
import { serve } from './worker-core.js';

const PTHREAD_WORKER = new URL('../dist/imdn-mt.worker.js', import.meta.url);
const MAIN_SCRIPT = new URL('../dist/imdn-mt.js', import.meta.url);

const port = { post: (m, t) => parentPort.postMessage(m, t), listen: (f) => parentPort.on('message', f) };

serve(port, async (threads) => {
  if (threads === 1) return { factory: createImdnModule, options: {} };
  installWorkerShim();
  return {
    factory: createImdnThreadedModule,
    options: { imdnThreads: threads, pthreadWorker: PTHREAD_WORKER, mainScriptUrlOrBlob: MAIN_SCRIPT.href },
  };
});
