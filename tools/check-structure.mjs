// The C++ core's shape, checked (tools/lint.sh runs this): no file in src/ over 700 lines, no
// function over 80 (the pickle interpreter's opcode switch excepted), and no include cycle among
// src/ files, a .cpp and its .h counting as one. Prints what breaks a rule; exits 1 if anything does.
//
//   node tools/check-structure.mjs [--list]     (--list: every function over 50 lines too)
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const MAX_FILE = 700;
const MAX_FUNCTION = 80;
const EXEMPT = new Set(['src/pickle.cpp:Unpickler::run']);

/** @param {string} dir @returns {string[]} */
const sources = (dir) =>
  readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : /\.(cpp|h)$/.test(e.name) ? [join(dir, e.name)] : [],
  );

const files = sources('src');
const problems = [];
const list = process.argv.includes('--list');

for (const file of files) {
  const lines = readFileSync(join(root, file), 'utf8').split('\n');
  if (lines.length > MAX_FILE) problems.push(`${file}: ${lines.length} lines (at most ${MAX_FILE})`);
  // Function bodies (clang-format's layout): a signature at namespace level (column 0) or in a
  // class at column 0 (column 2), possibly over several lines, ending in "{"; the body ends at
  // the "}" of the same indentation.
  const keyword = /^(namespace|struct|class|enum|union|extern|template|if|for|while|switch|else|do|case|return|#)\b/;
  let inClass = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (/^(class|struct) [^;]*\{$/.test(line)) inClass = true;
    if (line.startsWith('};')) inClass = false;
    const indent = inClass ? '  ' : '';
    if (!line.startsWith(indent) || line[indent.length] === ' ' || keyword.test(line.slice(indent.length))) continue;
    if (!line.includes('(') || line.trimStart().startsWith('//')) continue;
    let end = i;
    while (end < lines.length && !/[{;}]$/.test(lines[end]) && end - i < 6) end++;
    if (!lines[end]?.endsWith('{') || /=\s*[^=]*\{$/.test(lines[end]) || /\)\s*;/.test(lines[end])) continue;
    const close = `${indent}}`;
    let j = end + 1;
    while (j < lines.length && lines[j] !== close && !lines[j].startsWith(`${close};`)) j++;
    const length = j - i + 1;
    const name = (/([\w:~]+)\s*\(/.exec(line) || ['', line.trim()])[1];
    if (length > MAX_FUNCTION && !EXEMPT.has(`${file}:${name}`)) problems.push(`${file}:${i + 1}: ${name} is ${length} lines (at most ${MAX_FUNCTION})`);
    else if (list && length > 50) console.log(`${file}:${i + 1}: ${name} ${length} lines`);
    i = j;
  }
}

// Include cycles between modules (a .cpp and its .h are one module).
const module = (/** @type {string} */ file) => file.replace(/\.(cpp|h)$/, '');
const edges = new Map();
for (const file of files) {
  const from = module(file);
  if (!edges.has(from)) edges.set(from, new Set());
  for (const [, inc] of readFileSync(join(root, file), 'utf8').matchAll(/^#include "([^"]+)"/gm)) {
    const to = module(join('src', inc));
    if (to !== from && files.some((f) => module(f) === to)) edges.get(from).add(to);
  }
}
const state = new Map();
/** @param {string} node @param {string[]} path */
const visit = (node, path) => {
  state.set(node, 1);
  for (const next of edges.get(node) ?? []) {
    if (state.get(next) === 1) problems.push(`include cycle: ${[...path.slice(path.indexOf(next)), next].join(' -> ')}`);
    else if (!state.has(next)) visit(next, [...path, next]);
  }
  state.set(node, 2);
};
for (const node of edges.keys()) if (!state.has(node)) visit(node, [node]);

for (const p of problems) console.log(p);
console.log(
  problems.length
    ? `structure: ${problems.length} problems`
    : `structure: ${files.length} files in src/, none over ${MAX_FILE} lines, no function over ${MAX_FUNCTION}, no include cycle`,
);
process.exit(problems.length ? 1 : 0);
