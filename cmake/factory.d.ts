// Declarations of an Emscripten module factory (dist/imdn.js, dist/imdn-mt.js), copied next to
// it by the build so that `tsc` with checkJs (tsconfig.json) checks the package's JavaScript
// against it rather than the generated glue. The module's own API is wasm/bindings.cpp.
declare const createImdnModule: (settings?: Record<string, unknown>) => Promise<any>;
export default createImdnModule;
