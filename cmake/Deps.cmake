# Builds XNNPACK and its companions once per toolchain into a cache outside the clone and
# imports them as the target imdn::xnnpack.
#
#   IMDN_CACHE_DIR        where builds are cached (default: $IMDN_CACHE_DIR, else ~/.cache/imdn-wasm)
#   IMDN_DEPS_SOURCE_DIR  local source trees <dir>/{XNNPACK,pthreadpool,cpuinfo,FXdiv} at the pinned
#                         commits, used instead of downloading (default: <cache>/src; see
#                         tools/fetch-deps.sh). Missing trees are downloaded by FetchContent.
#
# The cache key is the pins, the deps project and the toolchain, so a new clone (CI) reuses the
# build and a pin change builds anew.
if(DEFINED ENV{IMDN_CACHE_DIR})
  set(_imdn_cache_default "$ENV{IMDN_CACHE_DIR}")
else()
  set(_imdn_cache_default "$ENV{HOME}/.cache/imdn-wasm")
endif()
set(IMDN_CACHE_DIR "${_imdn_cache_default}" CACHE PATH "Cache for dependency builds")
set(IMDN_DEPS_SOURCE_DIR "${IMDN_CACHE_DIR}/src" CACHE PATH "Local dependency source trees")

set(_deps_project "${CMAKE_CURRENT_LIST_DIR}/deps")
file(READ "${_deps_project}/CMakeLists.txt" _a)
# (The pins themselves, not the comments around them: a comment edit keeps the cache.)
file(STRINGS "${_deps_project}/pins.cmake" _b REGEX "^set\\(")
set(_extra_args "")
set(_t "")
if(EMSCRIPTEN AND IMDN_THREADS)
  set(_flavour "wasm-mt")
  set(_flags "-msimd128 -pthread")
  # Runs inside XNNPACK's project, before it adds pthreadpool (see threads.cmake).
  set(_extra_args "-DCMAKE_PROJECT_XNNPACK_INCLUDE=${IMDN_CACHE_DIR}/deps/wasm-mt-threads.cmake")
  file(READ "${_deps_project}/threads.cmake" _t)
elseif(EMSCRIPTEN)
  set(_flavour "wasm")
  set(_flags "-msimd128")
else()
  set(_flavour "native")
  set(_flags "")
endif()
string(SHA256 _key "${_a}${_b}${_t}${CMAKE_C_COMPILER}${CMAKE_C_COMPILER_VERSION}${CMAKE_CXX_COMPILER}${_flags}")
string(SUBSTRING "${_key}" 0 12 _key)
set(_dir "${IMDN_CACHE_DIR}/deps/${_flavour}-${_key}")
# A build made by another toolchain can be used instead (its build/imdn-deps.cmake): the fuzzers,
# built with clang, link the native build's XNNPACK (gcc) rather than building it again.
set(IMDN_XNNPACK_DEPS_FILE "" CACHE FILEPATH "imdn-deps.cmake of an XNNPACK build to use instead of building one")
if(IMDN_XNNPACK_DEPS_FILE)
  get_filename_component(_dir "${IMDN_XNNPACK_DEPS_FILE}/../.." ABSOLUTE)
endif()
set(IMDN_XNNPACK_DEPS_USED "${_dir}/build/imdn-deps.cmake" CACHE INTERNAL "the XNNPACK build this tree links")

if(NOT EXISTS "${_dir}/build/imdn-deps.cmake" OR NOT EXISTS "${_dir}/built.stamp")
  message(STATUS "Building XNNPACK (${_flavour}) into ${_dir}; this happens once per pin and toolchain")
  file(MAKE_DIRECTORY "${_dir}/project")
  configure_file("${_deps_project}/CMakeLists.txt" "${_dir}/project/CMakeLists.txt" COPYONLY)
  configure_file("${_deps_project}/pins.cmake" "${_dir}/project/pins.cmake" COPYONLY)
  configure_file("${_deps_project}/threads.cmake" "${IMDN_CACHE_DIR}/deps/wasm-mt-threads.cmake" COPYONLY)
  set(_args -G Ninja -DCMAKE_BUILD_TYPE=Release "-DCMAKE_C_FLAGS=${_flags}" "-DCMAKE_CXX_FLAGS=${_flags}"
            "-DCMAKE_C_COMPILER=${CMAKE_C_COMPILER}" "-DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}" ${_extra_args})
  if(CMAKE_TOOLCHAIN_FILE)
    list(APPEND _args "-DCMAKE_TOOLCHAIN_FILE=${CMAKE_TOOLCHAIN_FILE}")
  endif()
  foreach(pair IN ITEMS XNNPACK:XNNPACK PTHREADPOOL:pthreadpool CPUINFO:cpuinfo FXDIV:FXdiv)
    string(REPLACE ":" ";" pair "${pair}")
    list(GET pair 0 _name)
    list(GET pair 1 _tree)
    if(EXISTS "${IMDN_DEPS_SOURCE_DIR}/${_tree}/CMakeLists.txt" OR EXISTS "${IMDN_DEPS_SOURCE_DIR}/${_tree}/include")
      list(APPEND _args "-DFETCHCONTENT_SOURCE_DIR_${_name}=${IMDN_DEPS_SOURCE_DIR}/${_tree}")
    endif()
  endforeach()
  execute_process(COMMAND ${CMAKE_COMMAND} -S "${_dir}/project" -B "${_dir}/build" ${_args}
                  RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "Configuring XNNPACK failed (${_rc}); see the output above")
  endif()
  include(ProcessorCount)
  ProcessorCount(_jobs)
  execute_process(COMMAND ${CMAKE_COMMAND} --build "${_dir}/build" --parallel ${_jobs}
                  RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "Building XNNPACK failed (${_rc}); see the output above")
  endif()
  file(TOUCH "${_dir}/built.stamp")
endif()

include("${_dir}/build/imdn-deps.cmake")
add_library(imdn_xnnpack INTERFACE)
target_include_directories(imdn_xnnpack SYSTEM INTERFACE ${IMDN_XNNPACK_INCLUDE_DIRS})
target_link_libraries(imdn_xnnpack INTERFACE ${IMDN_XNNPACK_LIBRARIES})
if(NOT EMSCRIPTEN)
  find_package(Threads REQUIRED)
  target_link_libraries(imdn_xnnpack INTERFACE Threads::Threads m)
endif()
add_library(imdn::xnnpack ALIAS imdn_xnnpack)
