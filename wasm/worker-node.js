// A worker_threads worker of the pool under Node: the single-threaded module, or the threaded one
// whose pthreads are worker_threads made to look like Web Workers (node-threads.js).
import { loadForNode, parentPortOf } from './node-threads.js';
import { serve } from './worker-core.js';

serve(parentPortOf(), loadForNode);
