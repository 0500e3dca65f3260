#!/usr/bin/env bash
# Quick start, step 2: every test. Builds whatever is missing first (tools/setup.sh --no-sample),
# then the lint checks (tools/lint.sh), the native suite (CTest: GoogleTest, converter, CLI on
# Set5), the Node suite (node --test over the built package, on Debian's Node 20 and on Node 24),
# the package suite (the npm tarball installed into fresh consumer apps: bundlers, Node,
# TypeScript; the web apps in Chromium, Firefox ESR and WebKitGTK) and the browser suite (the demo
# page in headless Chromium; the package and the demo in all three engines), the native suite under ASan + UBSan (tools/sanitize.sh),
# a short run of each fuzz target (tools/fuzz.sh), and prints one closing line with the totals.
source "$(dirname "$0")/lib.sh"

"$ROOT/tools/setup.sh" --no-sample
# The three browser engines (tools/browsers.mjs), each from Debian; WebKitGTK's MiniBrowser needs
# a display: Xvfb.
ensure_packages chromium:/usr/bin/chromium firefox-esr:/usr/bin/firefox-esr webkit2gtk-driver:/usr/bin/WebKitWebDriver \
  xvfb:/usr/bin/Xvfb clang-format:clang-format-14
ensure_node24

export IMDN_NATIVE_BIN=$BUILD/native
log=$(mktemp -d)
status=0

say "Lint (tools/lint.sh: strict tsc with checkJs, Biome, clang-format, src/ structure, .wasm size budgets)"
"$ROOT/tools/lint.sh" 2>&1 | tee "$log/lint" || status=1

say "Native tests (ctest)"
ctest --test-dir "$BUILD/native" --output-on-failure -j2 2>&1 | tee "$log/ctest" || status=1

say "Node tests (node --test, Node $(node --version))"
(cd "$ROOT" && node --test --test-reporter=tap tests/node/*.test.mjs) 2>&1 | tee "$log/node20" || status=1

say "Node tests again on Node $("$NODE24" --version)"
(cd "$ROOT" && "$NODE24" --test --test-reporter=tap tests/node/*.test.mjs) 2>&1 | tee "$log/node24" || status=1

say "Package tests (npm pack, installed into consumer apps, built and run)"
(cd "$ROOT" && node --test --test-reporter=tap tests/consumers/*.test.mjs) 2>&1 | tee "$log/consumers" || status=1

say "Browser tests (Chromium, Firefox ESR, WebKitGTK; screenshot in build/browser/demo.png)"
(cd "$ROOT" && node --test --test-reporter=tap tests/browser/*.test.mjs) 2>&1 | tee "$log/browser" || status=1

# The native suite again under ASan + UBSan, then each fuzz target for a minute (longer runs by
# hand: tools/fuzz.sh 3600; IMDN_FUZZ_SECONDS sets this run's length).
"$ROOT/tools/sanitize.sh" 2>&1 | tee "$log/asan" || status=1
"$ROOT/tools/fuzz.sh" "${IMDN_FUZZ_SECONDS:-60}" 2>&1 | tee "$log/fuzz" || status=1

# Totals of all runners, in the plain form CI reads.
c_total=$(cat "$log/ctest" "$log/asan" | sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\1 \2/p' | awk '{ f += $1; a += $2; n++ } END { if (n == 2) print f, a }')
c_failed=${c_total%% *}; c_all=${c_total##* }
f_pass=$(grep -c '^fuzz_[a-z]*: .* no finding' "$log/fuzz" || true)
l_pass=$(grep -c '^lint ok:' "$log/lint" || true)
l_fail=$(grep -c '^lint FAILED:' "$log/lint" || true)
f_fail=$(grep -c '^fuzz_[a-z]*: FINDING' "$log/fuzz" || true)
node_logs=("$log/node20" "$log/node24" "$log/consumers" "$log/browser")
n_pass=$(cat "${node_logs[@]}" | sed -n 's/^# pass \([0-9]*\)/\1/p' | awk -v want=${#node_logs[@]} '{ s += $1; n++ } END { if (n == want) print s }')
n_fail=$(cat "${node_logs[@]}" | sed -n 's/^# fail \([0-9]*\)/\1/p' | awk '{ s += $1 } END { print s + 0 }')
passed=$(( ${c_all:-0} - ${c_failed:-0} + ${n_pass:-0} + f_pass + l_pass ))
failed=$(( ${c_failed:-0} + ${n_fail:-0} + f_fail + l_fail ))
[ $((f_pass + f_fail)) -eq 4 ] || status=1
[ $((l_pass + l_fail)) -eq 5 ] || status=1
[ -z "$c_total" ] || [ -z "$n_pass" ] && status=1
[ "$failed" -gt 0 ] && status=1
echo "tests: $passed passed, $failed failed"
exit $status
