# Included by cmake/Deps.cmake into XNNPACK's project (CMAKE_PROJECT_XNNPACK_INCLUDE) for the threaded
# WebAssembly flavour: pthreadpool's own CMake always builds its single-threaded shim under
# Emscripten, so its real implementation (futexes = Atomics.wait/notify) is built here, as the
# target XNNPACK then finds instead of adding its own.
if(EMSCRIPTEN AND NOT TARGET pthreadpool)
  add_library(pthreadpool STATIC
    ${PTHREADPOOL_SOURCE_DIR}/src/portable-api.c
    ${PTHREADPOOL_SOURCE_DIR}/src/memory.c
    ${PTHREADPOOL_SOURCE_DIR}/src/pthreads.c)
  target_include_directories(pthreadpool PUBLIC ${PTHREADPOOL_SOURCE_DIR}/include)
  target_include_directories(pthreadpool PRIVATE ${PTHREADPOOL_SOURCE_DIR}/src ${FXDIV_SOURCE_DIR}/include)
  target_compile_definitions(pthreadpool PUBLIC PTHREADPOOL_NO_DEPRECATED_API=1)
  target_compile_definitions(pthreadpool PRIVATE PTHREADPOOL_USE_FUTEX=1 PTHREADPOOL_USE_FASTPATH=0)
endif()
