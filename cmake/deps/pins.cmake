# Pinned dependency commits: XNNPACK and companions that build unpatched with Debian's emscripten
# 3.1.6 (wasm32 + SIMD128) and natively with gcc 12. tools/fetch-deps.sh puts their sources in
# ~/.cache/imdn-wasm/src for offline builds.
set(IMDN_PIN_XNNPACK_URL https://github.com/google/XNNPACK.git)
set(IMDN_PIN_XNNPACK_COMMIT 75db3c093b6d74fe90b8df82670cd8a01102ba38)
set(IMDN_PIN_PTHREADPOOL_URL https://github.com/google/pthreadpool.git)
set(IMDN_PIN_PTHREADPOOL_COMMIT 0e6ca13779b57d397a5ba6bfdcaa8a275bc8ea2e)
set(IMDN_PIN_CPUINFO_URL https://github.com/pytorch/cpuinfo.git)
set(IMDN_PIN_CPUINFO_COMMIT d6108819d1d41c749b076e250be454c4559cb771)
set(IMDN_PIN_FXDIV_URL https://github.com/Maratyszcza/FXdiv.git)
set(IMDN_PIN_FXDIV_COMMIT 63058eff77e11aa15bf531df5dd34395ec3017c8)
