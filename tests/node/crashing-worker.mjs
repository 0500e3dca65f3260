// A worker of the pool (as wasm/worker-node.js) that crashes, with an uncaught error as a real
// crash would, on the first work it is sent while the marker file named by the test exists (once:
// the worker that crashes removes it, so the replacement works).
import { unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { loadForNode, parentPortOf } from '../../wasm/node-threads.js';
import { serve } from '../../wasm/worker-core.js';

const MARKER = join(tmpdir(), 'imdn-wasm-test-crash');
const port = parentPortOf();

serve(
  {
    post: port.post,
    listen: (f) =>
      port.listen((m) => {
        if (m.type === 'upscale' || m.type === 'unit') {
          let crash = true;
          try {
            unlinkSync(MARKER);
          } catch {
            crash = false; // no marker (or another worker took it): work as usual
          }
          if (crash) throw new Error('test crash');
        }
        f(m);
      }),
  },
  loadForNode,
);
