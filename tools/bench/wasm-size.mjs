#!/usr/bin/env node
// What the package's .wasm files are made of: bytes per section, and the code section's function
// bodies grouped by where they come from (XNNPACK's microkernels and the rest of XNNPACK, our
// engine, Embind, the C/C++ runtime, ...), using the symbol maps the build writes next to them.
//
//   node tools/bench/wasm-size.mjs [dist/imdn.wasm ...]
//   node tools/bench/wasm-size.mjs --budget     (tools/lint.sh: fails past the budgets below)
//
// Prints raw and gzip-9 sizes of each file, then the breakdown. --budget prints the gzipped size
// of each module against its budget and exits 1 if one is over (or not built): a change that
// grows a module past it either earns a new budget here, in its own commit saying why, or shrinks.
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { ROOT } from './common.mjs';

/** Gzip-9 bytes each module may have (measured 2026-12-08: 218 and 165 KiB). */
const BUDGETS = { 'imdn.wasm': 240 * 1024, 'imdn-mt.wasm': 180 * 1024 };

if (process.argv.includes('--budget')) {
  let over = 0;
  for (const [name, budget] of Object.entries(BUDGETS)) {
    const file = join(ROOT, 'dist', name);
    if (!existsSync(file)) {
      console.log(`${name}: not built (tools/setup.sh builds it)`);
      over++;
      continue;
    }
    const gz = gzipSync(readFileSync(file), { level: 9 }).length;
    const ok = gz <= budget;
    if (!ok) over++;
    console.log(`${name}: ${(gz / 1024).toFixed(1)} KiB gzipped, budget ${(budget / 1024).toFixed(0)} KiB${ok ? '' : ': OVER'}`);
  }
  process.exit(over ? 1 : 0);
}

const files = process.argv.slice(2).length ? process.argv.slice(2) : ['imdn.wasm', 'imdn-mt.wasm'].map((f) => join(ROOT, 'dist', f));

const SECTIONS = ['custom', 'type', 'import', 'function', 'table', 'memory', 'global', 'export', 'start', 'element', 'code', 'data', 'data count'];

/** @param {Uint8Array} bytes */
function reader(bytes) {
  let pos = 0;
  const r = {
    get pos() {
      return pos;
    },
    set pos(p) {
      pos = p;
    },
    byte: () => bytes[pos++],
    uleb() {
      let result = 0;
      let shift = 0;
      for (;;) {
        const b = bytes[pos++];
        result += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if (!(b & 0x80)) return result;
      }
    },
    name() {
      const n = r.uleb();
      const s = new TextDecoder().decode(bytes.subarray(pos, pos + n));
      pos += n;
      return s;
    },
  };
  return r;
}

// Section sizes, the number of imported functions, and each defined function's body size.
/** @param {Uint8Array} bytes */
function parse(bytes) {
  const r = reader(bytes);
  r.pos = 8;
  const sections = new Map();
  let importedFunctions = 0;
  const bodies = [];
  while (r.pos < bytes.length) {
    const id = r.byte();
    const size = r.uleb();
    const start = r.pos;
    const name = SECTIONS[id] ?? `section ${id}`;
    sections.set(name, (sections.get(name) ?? 0) + size);
    if (id === 2) {
      const n = r.uleb();
      for (let i = 0; i < n; i++) {
        r.name();
        r.name();
        const kind = r.byte();
        if (kind === 0) {
          r.uleb();
          importedFunctions++;
        } else if (kind === 1) {
          r.byte();
          const flags = r.uleb();
          r.uleb();
          if (flags & 1) r.uleb();
        } else if (kind === 2) {
          const flags = r.uleb();
          r.uleb();
          if (flags & 1) r.uleb();
        } else if (kind === 3) {
          r.byte();
          r.byte();
        } else if (kind === 4) {
          r.byte();
          r.uleb();
        }
      }
    } else if (id === 10) {
      const n = r.uleb();
      for (let i = 0; i < n; i++) {
        const len = r.uleb();
        bodies.push(len);
        r.pos += len;
      }
    }
    r.pos = start + size;
  }
  return { sections, importedFunctions, bodies };
}

// Where a function comes from, by its name (as the symbol map writes it: demangled, with
// \xx escapes for punctuation).
/** @param {string} raw */
function origin(raw) {
  if (!raw) return 'unnamed';
  const name = raw.replace(/\\([0-9a-f]{2})/g, (_, /** @type {string} */ h) => String.fromCharCode(parseInt(h, 16)));
  if (/^xnn_.*ukernel|^xnn_.*__(wasm|scalar)/.test(name)) return 'XNNPACK microkernels';
  if (/^stbi/.test(name)) return 'stb_image, stb_image_write';
  if (/^(imdn::|\(anonymous namespace\)::)/.test(name) && !/^\(anonymous namespace\)::.*(itanium|demangle)/.test(name)) {
    return 'imdn-wasm (engine, bindings)';
  }
  if (/emscripten::|embind|emval|^_?emscripten/.test(name)) return 'Embind and Emscripten runtime';
  if (/^pthreadpool|^cpuinfo|^fxdiv|^thread_main|^pthread|^__pthread|^_emscripten_thread/.test(name)) return 'pthreadpool, cpuinfo, pthreads';
  if (/std::__2::|^std::|__cxa|__cxxabiv1|^operator (new|delete)|__cxx_|itanium_demangle/.test(name)) return 'C++ runtime (libc++, libc++abi)';
  if (/^xnn_|^(create|setup|reshape|init|compute|pack|run)_|xnnpack/i.test(name)) return 'XNNPACK operators and runtime';
  return 'C runtime (musl, dlmalloc) and other';
}

for (const file of files) {
  if (!existsSync(file)) {
    console.log(`${file}: not built`);
    continue;
  }
  const bytes = readFileSync(file);
  const { sections, importedFunctions, bodies } = parse(bytes);
  const gz = gzipSync(bytes, { level: 9 }).length;
  console.log(`\n${basename(file)}: ${(bytes.length / 1024).toFixed(0)} KiB, ${(gz / 1024).toFixed(0)} KiB gzipped`);
  for (const [name, size] of [...sections].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${`${name} section`.padEnd(40)} ${(size / 1024).toFixed(1).padStart(7)} KiB ${((100 * size) / bytes.length).toFixed(1).padStart(5)}%`);
  }
  const symbols = file.replace(/\.wasm$/, '.js.symbols');
  if (!existsSync(symbols)) {
    console.log(`  (no ${basename(symbols)}: build with --emit-symbol-map for the code breakdown)`);
    continue;
  }
  const names = new Map();
  for (const line of readFileSync(symbols, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) names.set(Number(line.slice(0, i)), line.slice(i + 1));
  }
  const groups = new Map();
  const code = bodies.reduce((a, b) => a + b, 0);
  bodies.forEach((len, i) => {
    const g = origin(names.get(importedFunctions + i));
    const e = groups.get(g) ?? { bytes: 0, count: 0 };
    e.bytes += len;
    e.count++;
    groups.set(g, e);
  });
  console.log(`  code by origin (${bodies.length} functions, ${(code / 1024).toFixed(0)} KiB):`);
  for (const [g, e] of [...groups].sort((a, b) => b[1].bytes - a[1].bytes)) {
    console.log(
      `    ${g.padEnd(38)} ${(e.bytes / 1024).toFixed(1).padStart(7)} KiB ${((100 * e.bytes) / code).toFixed(1).padStart(5)}%  ${String(e.count).padStart(5)} functions`,
    );
  }
}
