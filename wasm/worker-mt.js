// The browser worker of the threaded module (dist/imdn-mt.wasm): one instance whose threads are
// nested Web Workers (pthreads). Started by browser.js on cross-origin isolated pages.
//
// The pthreads run Emscripten's thread script, which imports the module's JavaScript. The script
// comes as a string (dist/imdn-mt.thread.js, made by the build) and runs from a Blob URL, which
// keeps this page's origin whatever a bundler does with small files; the module's JavaScript is
// located with new URL(..., import.meta.url), which bundlers copy as an asset, unchanged. (The
// build has taken Emscripten's own new Worker(new URL(...)) out of dist/imdn-mt.js, so that no
// bundler tries to bundle the thread script: cmake/patch-glue.cmake.)
import createImdnModule from '../dist/imdn-mt.js';
import THREAD_SCRIPT from '../dist/imdn-mt.thread.js';
import { selfPort, serve } from './worker-core.js';

const MAIN_SCRIPT = new URL('../dist/imdn-mt.js', import.meta.url);
let threadUrl = null;

serve(selfPort(), async (threads) => {
  threadUrl ??= URL.createObjectURL(new Blob([THREAD_SCRIPT], { type: 'text/javascript' }));
  return { factory: createImdnModule, options: { imdnThreads: threads, pthreadWorker: threadUrl, mainScriptUrlOrBlob: MAIN_SCRIPT.href } };
});
