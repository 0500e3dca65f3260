# Run after linking (cmake -DGLUE=dist/imdn*.js -P cmake/patch-glue.cmake): takes out of Emscripten's
# JavaScript the new URL('...', import.meta.url) forms that bundlers follow, which the package
# never uses at run time, so that a bundler neither copies the .wasm twice nor tries to bundle the
# pthread script (a classic worker with a dynamic import, which Vite refuses in a worker bundle):
# - the .wasm's own location: the package hands every instance a compiled module (engine.js);
# - the pthread workers' script: taken from Module.pthreadWorker, which wasm/worker-mt.js and
#   wasm/worker-node.js set (located there with new URL(), copied by bundlers as an asset).
# Fails when a pattern is missing, so that an Emscripten upgrade cannot undo this silently.
file(READ "${GLUE}" js)
get_filename_component(name "${GLUE}" NAME_WE)
set(count 0)
foreach(pair IN ITEMS
    "new URL(\"${name}.wasm\",import.meta.url).toString()=>\"${name}.wasm\""
    "new Worker(new URL(\"${name}.worker.js\",import.meta.url))=>new Worker(Module[\"pthreadWorker\"])")
  string(REPLACE "=>" ";" pair "${pair}")
  list(GET pair 0 from)
  list(GET pair 1 to)
  string(FIND "${js}" "${from}" at)
  if(at GREATER -1)
    string(REPLACE "${from}" "${to}" js "${js}")
    math(EXPR count "${count} + 1")
  elseif(from MATCHES "^new Worker" AND js MATCHES "PThread")
    message(FATAL_ERROR "${GLUE}: the pthread worker pattern was not found: ${from}")
  elseif(from MATCHES "\\.wasm")
    message(FATAL_ERROR "${GLUE}: the .wasm location pattern was not found: ${from}")
  endif()
endforeach()
string(FIND "${js}" "import.meta.url)" left)
if(left GREATER -1)
  message(FATAL_ERROR "${GLUE}: a new URL(..., import.meta.url) is left that bundlers would follow")
endif()
file(WRITE "${GLUE}" "${js}")
