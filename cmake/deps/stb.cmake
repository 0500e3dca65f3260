# stb_image and stb_image_write, pinned upstream (nothings/stb, stb_image v2.30): Debian's libstb-dev
# is v2.27, which fuzz-found inputs crash (a JPEG Huffman table overflow, a PNM header integer
# overflow). Header-only: taken from <IMDN_DEPS_SOURCE_DIR>/stb when that tree
# is there (tools/fetch-deps.sh), else downloaded at the pinned commit into the cache.
# Kept out of pins.cmake so that it is not part of XNNPACK's cache key.
set(IMDN_PIN_STB_URL https://github.com/nothings/stb.git)
set(IMDN_PIN_STB_COMMIT 31c1ad37456438565541f4919958214b6e762fb4)

if(EXISTS "${IMDN_DEPS_SOURCE_DIR}/stb/stb_image.h")
  set(STB_INCLUDE_DIR "${IMDN_DEPS_SOURCE_DIR}/stb")
else()
  include(FetchContent)
  FetchContent_Declare(stb GIT_REPOSITORY ${IMDN_PIN_STB_URL} GIT_TAG ${IMDN_PIN_STB_COMMIT}
                       SOURCE_DIR "${IMDN_DEPS_SOURCE_DIR}/stb")
  FetchContent_GetProperties(stb)
  if(NOT stb_POPULATED)
    FetchContent_Populate(stb)
  endif()
  set(STB_INCLUDE_DIR "${stb_SOURCE_DIR}")
endif()
file(STRINGS "${STB_INCLUDE_DIR}/stb_image.h" _stb_version LIMIT_COUNT 1 REGEX "stb_image - v")
if(NOT _stb_version MATCHES "v2\\.(3[0-9]|[4-9][0-9])")
  message(FATAL_ERROR "${STB_INCLUDE_DIR}/stb_image.h is not stb_image v2.30 or later (${_stb_version})")
endif()
