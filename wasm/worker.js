// A browser worker of the pool of single-threaded instances (dist/imdn.wasm). Started by
// browser.js with new Worker(new URL('./worker.js', import.meta.url), { type: 'module' }).
import createImdnModule from '../dist/imdn.js';
import { selfPort, serve } from './worker-core.js';

serve(selfPort(), async (threads) => {
  if (threads !== 1) throw new Error('imdn: this worker runs the single-threaded module only');
  return { factory: createImdnModule, options: {} };
});
