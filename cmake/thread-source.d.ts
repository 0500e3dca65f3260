// dist/imdn-mt.thread.js (cmake/thread-source.mjs): the pthread script's source, as a string.
declare const source: string;
export default source;
