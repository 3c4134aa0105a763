#!/usr/bin/env bash
# tools/matrix.sh -- build uvq and run its test suite in every configuration
# this Debian 12 (bookworm) x86_64 machine can run, then print one table:
#
#   configuration | build | tests (passed/failed/skipped) | time
#
#   bash tools/matrix.sh              # every configuration
#   bash tools/matrix.sh --list       # the names and what each one is
#   bash tools/matrix.sh --only NAME  # one configuration (repeatable)
#
# Run as root: it installs what is missing (tools/setup.sh, the QUIC deps of
# tools/deps-quic.sh, the i386 multiarch libuv and gcc-multilib). Every
# configuration builds in its own tree, build/matrix/<name>, with
# -DUVQ_WERROR=ON, so a second run only rebuilds what changed. Logs are kept
# next to each tree (build/matrix/<name>.{configure,build,ctest}.log).
#
# Environment:
#   MATRIX_JOBS          parallel build and ctest jobs  (default 2)
#   MATRIX_TEST_TIMEOUT  ctest --timeout per test, s    (default 120)
#   MATRIX_CONFIG_LIMIT  wall-clock limit per step, s   (default 600)
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

jobs=${MATRIX_JOBS:-2}
test_timeout=${MATRIX_TEST_TIMEOUT:-120}
step_limit=${MATRIX_CONFIG_LIMIT:-600}
root=build/matrix

# name|description. The order is the order they run in.
configs=(
  "gcc-debug|gcc, Debug, Linux datapath, QUIC on"
  "gcc-release|gcc, Release, Linux datapath, QUIC on"
  "clang-debug|clang, Debug, Linux datapath, QUIC on"
  "clang-release|clang, Release, Linux datapath, QUIC on"
  "clang-asan-ubsan|clang, Debug, -DUVQ_SANITIZE=ON (ASan+UBSan), QUIC on"
  "gcc-portable|gcc, RelWithDebInfo, -DUVQ_PORTABLE=ON (portable POSIX datapath), QUIC on"
  "i386|gcc -m32, RelWithDebInfo, Debian's i386 libuv; UDP library and tests only (QUIC deps not built for i386)"
  "oldest-libuv|libuv 1.44 (bookworm's), the minimum CMakeLists.txt accepts: what every native row above links"
  "node-libuv|Node 20's bundled libuv: src/ and test/ compiled against Node's uv.h; node/ addon tests on Node's loop"
)

usage() {
  echo "usage: bash tools/matrix.sh [--list] [--only NAME]..." >&2
  exit 2
}

only=()
while [ $# -gt 0 ]; do
  case $1 in
    --list)
      for c in "${configs[@]}"; do printf '%-18s %s\n' "${c%%|*}" "${c#*|}"; done
      exit 0 ;;
    --only)
      [ $# -ge 2 ] || usage
      found=0
      for c in "${configs[@]}"; do [ "${c%%|*}" = "$2" ] && found=1; done
      [ $found -eq 1 ] || { echo "matrix: no configuration named '$2' (see --list)" >&2; exit 2; }
      only+=("$2")
      shift 2 ;;
    -h|--help) usage ;;
    *) usage ;;
  esac
done

selected() {
  [ ${#only[@]} -eq 0 ] && return 0
  local n
  for n in "${only[@]}"; do [ "$n" = "$1" ] && return 0; done
  return 1
}

mkdir -p "$root"
rows=()
status=0
matrix_start=$SECONDS

# Appends one table row; a failing build or test marks the whole run failed.
add_row() {
  rows+=("$1|$2|$3|$4")
}

elapsed() {
  local s=$((SECONDS - $1))
  printf '%dm%02ds' $((s / 60)) $((s % 60))
}

# Fills the globals pass/fail/skip from a ctest log; returns 1 when the log
# has no summary (ctest did not finish).
parse_ctest() {
  local log=$1 line run
  line=$(grep -aE '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
  [ -n "$line" ] || return 1
  fail=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  run=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
  # ctest counts a test that exits with SKIP_RETURN_CODE as not failed;
  # it marks each one "***Skipped" on its result line.
  skip=$(grep -acE 'Test +#[0-9]+: .*\*\*\*Skipped' "$log" || true)
  pass=$((run - fail - skip))
}

# configure_build NAME CC [cmake args...]: configures and builds
# build/matrix/NAME; returns non-zero (after printing the tail of the log)
# when either step fails.
configure_build() {
  local name=$1 cc=$2
  shift 2
  local dir="$root/$name"
  echo "=== $name: configure" >&2
  if ! CC=$cc timeout "$step_limit" cmake -S . -B "$dir" -DUVQ_WERROR=ON "$@" \
       >"$dir.configure.log" 2>&1; then
    tail -n 30 "$dir.configure.log" >&2
    return 1
  fi
  echo "=== $name: build" >&2
  # -k: one file that fails to build must not hide every other result; the
  # tests of targets that did build still run (the rest count as "Not Run",
  # which ctest reports as failed).
  if ! timeout "$step_limit" cmake --build "$dir" -j"$jobs" -- -k >"$dir.build.log" 2>&1; then
    grep -E 'error|Error [0-9]' "$dir.build.log" | head -n 20 >&2
    return 2
  fi
}

# run_cmake_config NAME CC [cmake args...]: build, ctest, one row.
run_cmake_config() {
  local name=$1 cc=$2
  shift 2
  local dir="$root/$name" log="$root/$name.ctest.log" start=$SECONDS
  local pass fail skip build=ok rc=0
  configure_build "$name" "$cc" "$@" || rc=$?
  if [ $rc -eq 1 ]; then
    add_row "$name" "FAILED (configure; see $dir.configure.log)" "-" "$(elapsed $start)"
    status=1
    return
  elif [ $rc -ne 0 ]; then
    # Name the files that failed so the row says what broke.
    build="FAILED: $(sed -nE 's|^([^ :]*/)?([^/ :]+\.c):[0-9]+:[0-9]+: error:.*|\2|p' "$dir.build.log" |
                     sort -u | paste -sd, -) (see $dir.build.log)"
    status=1
  fi
  echo "=== $name: ctest" >&2
  timeout "$step_limit" ctest --test-dir "$dir" --output-on-failure -j"$jobs" \
    --timeout "$test_timeout" >"$log" 2>&1
  if ! parse_ctest "$log"; then
    tail -n 20 "$log" >&2
    add_row "$name" "$build" "did not finish (limit ${step_limit}s; see $log)" "$(elapsed $start)"
    status=1
    return
  fi
  grep -aE '\*\*\*(Failed|Timeout|Exception)|Not Run' "$log" >&2 || true
  add_row "$name" "$build" "$pass/$fail/$skip" "$(elapsed $start)"
  [ "$fail" -eq 0 ] || status=1
}

# --- what the configurations need -----------------------------------------

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "matrix: $1 is missing; run as root to install it" >&2
    return 1
  fi
}

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"
}

# Native toolchain, libuv, node and the QUIC dependencies, as tools/test.sh
# installs them.
deps=
native_ready=0
prepare_native() {
  [ $native_ready -eq 1 ] && return 0
  bash tools/setup.sh || return 1
  deps=$(bash tools/deps-quic.sh) || { echo "matrix: tools/deps-quic.sh failed" >&2; return 1; }
  export PKG_CONFIG_PATH="$deps/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  native_ready=1
}

# The i386 multiarch libuv and a compiler that can target it. Prints the
# reason and returns 1 when they cannot be had.
i386_reason=
prepare_i386() {
  local missing=()
  installed libuv1-dev:i386 || missing+=(libuv1-dev:i386)
  installed gcc-multilib || missing+=(gcc-multilib)
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! need_root "${missing[*]}"; then
    i386_reason="needs root to install ${missing[*]}"
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! dpkg --print-foreign-architectures | grep -qx i386; then
    dpkg --add-architecture i386
  fi
  # A failing index (a mirror mid-sync) is not fatal by itself: the install
  # below says whether what is needed was found.
  apt-get update -qq || echo "matrix: apt-get update reported errors; trying the install anyway" >&2
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$root/i386.apt.log" 2>&1; then
    tail -n 10 "$root/i386.apt.log" >&2
    i386_reason="apt-get install ${missing[*]} failed (see $root/i386.apt.log)"
    return 1
  fi
}

# --- the configurations ----------------------------------------------------

run_native() {
  local name=$1 cc=$2
  shift 2
  if ! prepare_native; then
    add_row "$name" "SKIPPED: tools/setup.sh or tools/deps-quic.sh failed" "-" "-"
    status=1
    return
  fi
  run_cmake_config "$name" "$cc" -DUVQ_DEPS_PREFIX="$deps" "$@"
}

run_i386() {
  local start=$SECONDS
  if ! prepare_native || ! prepare_i386; then
    add_row "i386" "SKIPPED: ${i386_reason:-native prerequisites failed}" "-" "-"
    status=1
    return
  fi
  # Some x86_64 kernels are built without IA32 emulation (this machine's
  # Firecracker guest kernel is one: every i386 executable fails with
  # "Exec format error"). Then the tests run under qemu-i386 user-mode
  # emulation instead, which runs 32-bit code faithfully but does not
  # emulate every socket option (IP_MTU, SO_MEMINFO, SO_TXTIME among
  # them), so tests that need those fail there for qemu's reason, not uvq's
  # (qemu_gaps below names each).
  local emulator=() probe="$root/i386-probe"
  mkdir -p "$root"
  printf 'int main(void) { return 0; }\n' >"$probe.c"
  if ! gcc -m32 -o "$probe" "$probe.c" 2>"$probe.log"; then
    i386_reason="gcc -m32 cannot build a program (see $probe.log)"
    add_row "i386" "SKIPPED: $i386_reason" "-" "-"
    status=1
    return
  fi
  if ! "$probe" 2>/dev/null; then
    if ! command -v qemu-i386 >/dev/null 2>&1; then
      if ! need_root qemu-user ||
         ! apt-get install -y -qq --no-install-recommends qemu-user >>"$root/i386.apt.log" 2>&1; then
        add_row "i386" "SKIPPED: this kernel cannot run i386 programs and qemu-user cannot be installed" "-" "-"
        status=1
        return
      fi
    fi
    emulator=(-DCMAKE_CROSSCOMPILING_EMULATOR="$(command -v qemu-i386)")
  fi
  # PKG_CONFIG_LIBDIR replaces pkg-config's default search path, so the
  # x86_64 libuv.pc (and the QUIC prefix) cannot leak into this build.
  # The QUIC layer is off because ngtcp2, nghttp3 and the QUIC wolfSSL are
  # only built for x86_64 here; the benchmarks are off because they need it.
  # CMAKE_LIBRARY_ARCHITECTURE makes find_library prefer the i386 multiarch
  # directory for what pkg-config names.
  local status_before=$status
  PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR=/usr/lib/i386-linux-gnu/pkgconfig:/usr/share/pkgconfig \
    run_cmake_config i386 gcc \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_C_FLAGS=-m32 \
      -DCMAKE_EXE_LINKER_FLAGS=-m32 -DCMAKE_SHARED_LINKER_FLAGS=-m32 \
      -DCMAKE_LIBRARY_ARCHITECTURE=i386-linux-gnu \
      -DUVQ_QUIC=OFF -DUVQ_BUILD_BENCH=OFF "${emulator[@]}"
  # Say in the row what this configuration leaves out, and prove the test
  # binary really is 32-bit.
  local last=$((${#rows[@]} - 1)) bin="$root/i386/test/uvq-tests" label="i386 (UDP only, QUIC off)"
  [ ${#emulator[@]} -eq 0 ] || label="i386 (UDP only, QUIC off; tests under qemu-i386: kernel has no IA32 emulation)"
  if [ -f "$bin" ] && ! file -L "$bin" 2>/dev/null | grep -q 'ELF 32-bit'; then
    rows[$last]="$label|FAILED: $bin is not a 32-bit ELF|-|$(elapsed $start)"
    status=1
  else
    rows[$last]="$label|${rows[$last]#*|}"
  fi
  [ ${#emulator[@]} -eq 0 ] || i386_qemu_verdict "$last" "$root/i386.ctest.log" "$status_before"
}

# Tests that cannot pass under qemu-user, each with the emulation gap that
# stops it (checked by hand against this qemu, 7.2): qemu answers the
# option with ENOPROTOOPT or drops the control message, and uvq reports
# exactly that (the feature is absent from uvq_udp_features()).
qemu_gaps=(
  "udp_error_connect|IP_MTU getsockopt is not emulated (ENOPROTOOPT)"
  "udp_pmtud_veth_ipv4|IP_MTU getsockopt is not emulated (ENOPROTOOPT)"
  "udp_pmtud_router_ipv4|IP_MTU getsockopt is not emulated (ENOPROTOOPT)"
  "udp_pmtud_router_ipv6|the ICMPv6 offender address (SO_EE_OFFENDER) is not converted"
  "udp_features_default_ipv4|SO_MEMINFO is not emulated, so drop counting is reported off"
  "udp_features_default_ipv6|SO_MEMINFO is not emulated, so drop counting is reported off"
  "udp_recv_metadata_all|SO_MEMINFO is not emulated, so drop counting is reported off"
  "udp_recv_kernel_drops|SO_MEMINFO is not emulated, so drop counting is reported off"
  "udp_features_all_requested|SO_TXTIME and SO_MEMINFO are not emulated"
  "udp_txtime_delivery|SO_TXTIME is not emulated"
  "udp_error_send_args|sendmsg with no iovec returns 0 without sending the empty datagram"
)

# i386_qemu_verdict ROW LOG STATUS_BEFORE: when every failed test is a
# known qemu-user gap, the row passes with the gaps named; any other
# failure keeps the row (and the run) failed.
i386_qemu_verdict() {
  local row=$1 log=$2 before=$3 t g unknown=() known=0
  local failed
  failed=$(sed -nE 's/^[[:space:]]*[0-9]+ - ([a-z0-9_]+) \((Failed|SEGFAULT|Subprocess aborted|Timeout|Not Run)\).*/\1/p' "$log")
  [ -n "$failed" ] || return 0
  for t in $failed; do
    g=$(printf '%s\n' "${qemu_gaps[@]}" | grep -m1 "^$t|" || true)
    if [ -n "$g" ]; then
      known=$((known + 1))
      echo "matrix: i386 $t fails under qemu-user only: ${g#*|}" >&2
    else
      unknown+=("$t")
    fi
  done
  IFS='|' read -r a b c d <<<"${rows[$row]}"
  if [ ${#unknown[@]} -eq 0 ] && [ "$b" = ok ]; then
    rows[$row]="$a|$b|$c ($known = qemu-user gaps, listed above)|$d"
    status=$before
  else
    rows[$row]="$a|$b|$c (not qemu gaps: ${unknown[*]})|$d"
  fi
}

# Not a build of its own: bookworm's libuv is 1.44.x, exactly the minimum
# CMakeLists.txt accepts, so every native row already builds and tests
# against the oldest supported libuv. This row checks that this is still
# true rather than assuming it.
run_oldest_libuv() {
  local have min
  prepare_native >/dev/null 2>&1 || true
  have=$(pkg-config --modversion libuv 2>/dev/null)
  min=$(sed -nE 's/.*libuv>=([0-9.]+).*/\1/p' CMakeLists.txt | head -n 1)
  if [ -z "$have" ] || [ -z "$min" ]; then
    add_row "oldest-libuv" "UNKNOWN: cannot read libuv's version or the minimum" "-" "-"
    status=1
  elif [ "${have%.*}" = "$min" ]; then
    add_row "oldest-libuv ($have)" "= the native rows above (they link libuv $have, minimum $min)" "see those rows" "-"
  else
    add_row "oldest-libuv" "NOT COVERED: system libuv is $have, minimum is $min" "-" "-"
    status=1
  fi
}

# Node ships no standalone libuv to link a test binary against, so this
# configuration has two halves: every src/ and test/ file is compiled (not
# linked) against Node's uv.h with the project's warnings as errors, and the
# node/ addon -- uvq's sources linked into an addon that resolves uv_* from
# the node binary -- runs its tests on Node's own loop.
run_node() {
  local name=node-libuv dir="$root/node-libuv" start=$SECONDS inc node_uv
  local compile_log="$root/node-libuv.compile.log" test_log="$root/node-libuv.tests.log"
  if ! prepare_native; then
    add_row "$name" "SKIPPED: tools/setup.sh failed" "-" "-"
    status=1
    return
  fi
  inc=$(node -p 'process.config.variables.node_prefix' 2>/dev/null)/include/node
  [ -f "$inc/uv.h" ] || inc=/usr/include/node
  if [ ! -f "$inc/uv.h" ]; then
    add_row "$name" "SKIPPED: no Node uv.h found (libnode-dev)" "-" "-"
    status=1
    return
  fi
  node_uv=$(sed -nE 's/^#define UV_VERSION_(MAJOR|MINOR|PATCH) ([0-9]+).*/\2/p' "$inc/uv/version.h" | paste -sd.)
  name="node-libuv ($node_uv)"

  # -isystem puts Node's directory ahead of /usr/include, so uvq.h's
  # #include <uv.h> is Node's; the check below makes sure of it. QUIC is
  # off because its tests are not part of what Node's loop can host.
  echo "=== node-libuv: configure" >&2
  if ! CC=gcc cmake -S . -B "$dir" -DUVQ_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
       -DCMAKE_C_FLAGS="-isystem $inc" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
       -DUVQ_QUIC=OFF -DUVQ_BUILD_BENCH=OFF >"$dir.configure.log" 2>&1; then
    tail -n 30 "$dir.configure.log" >&2
    add_row "$name" "FAILED (configure)" "-" "$(elapsed $start)"
    status=1
    return
  fi
  echo "=== node-libuv: compile src/ and test/ against $inc/uv.h" >&2
  if ! python3 - "$dir/compile_commands.json" "$top" "$inc/uv.h" >"$compile_log" 2>&1 <<'EOF'
import json, os, shlex, subprocess, sys
db, top, node_uv = sys.argv[1], sys.argv[2], sys.argv[3]
failed = checked = 0
for entry in json.load(open(db)):
    rel = os.path.relpath(entry["file"], top)
    if not (rel.startswith("src/") or rel.startswith("test/")):
        continue
    args = shlex.split(entry["command"])
    # Compile only, and list the headers used so that Node's uv.h can be
    # confirmed for every file that includes uv.h at all.
    args += ["-H"]
    r = subprocess.run(args, cwd=entry["directory"], capture_output=True, text=True)
    headers = [l.lstrip(". ") for l in r.stderr.splitlines() if l.startswith(".")]
    diags = [l for l in r.stderr.splitlines() if not l.startswith(".")
             and not l.startswith("Multiple include guards")]
    uv = [h for h in headers if os.path.basename(h) == "uv.h"]
    checked += 1
    if r.returncode != 0:
        failed += 1
        print("FAILED", rel)
        print("\n".join(diags))
    elif uv and os.path.realpath(uv[0]) != os.path.realpath(node_uv):
        failed += 1
        print("WRONG uv.h", rel, uv[0])
    else:
        print("ok", rel, "(uv.h: %s)" % (uv[0] if uv else "not included"))
print("%d files compiled, %d failed" % (checked, failed))
sys.exit(1 if failed or checked == 0 else 0)
EOF
  then
    tail -n 30 "$compile_log" >&2
    add_row "$name" "FAILED (see $compile_log)" "-" "$(elapsed $start)"
    status=1
    return
  fi
  local compiled
  compiled=$(tail -n 1 "$compile_log" | cut -d' ' -f1)

  echo "=== node-libuv: node/run-tests.sh (addon on Node's loop)" >&2
  timeout "$step_limit" sh node/run-tests.sh >"$test_log" 2>&1
  local npass nfail nskip
  npass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$test_log" | tail -n 1)
  nfail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$test_log" | tail -n 1)
  nskip=$(sed -n 's/^# skipped \([0-9]*\)$/\1/p' "$test_log" | tail -n 1)
  if [ -z "$npass" ] || [ -z "$nfail" ]; then
    tail -n 20 "$test_log" >&2
    add_row "$name" "$compiled files compiled; addon FAILED (see $test_log)" "-" "$(elapsed $start)"
    status=1
    return
  fi
  add_row "$name" "ok: $compiled src/+test/ files compiled (not linked); addon built" \
    "$npass/$nfail/${nskip:-0} (node/ addon tests)" "$(elapsed $start)"
  [ "$nfail" -eq 0 ] || status=1
}

for c in "${configs[@]}"; do
  name=${c%%|*}
  selected "$name" || continue
  case $name in
    gcc-debug)        run_native "$name" gcc   -DCMAKE_BUILD_TYPE=Debug ;;
    gcc-release)      run_native "$name" gcc   -DCMAKE_BUILD_TYPE=Release ;;
    clang-debug)      run_native "$name" clang -DCMAKE_BUILD_TYPE=Debug ;;
    clang-release)    run_native "$name" clang -DCMAKE_BUILD_TYPE=Release ;;
    clang-asan-ubsan) run_native "$name" clang -DCMAKE_BUILD_TYPE=Debug -DUVQ_SANITIZE=ON ;;
    gcc-portable)     run_native "$name" gcc   -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUVQ_PORTABLE=ON ;;
    i386)             run_i386 ;;
    oldest-libuv)     run_oldest_libuv ;;
    node-libuv)       run_node ;;
  esac
done

# --- the table ---------------------------------------------------------------

w1=13 w2=5 w3=31
for r in "${rows[@]}"; do
  IFS='|' read -r a b c d <<<"$r"
  [ ${#a} -gt $w1 ] && w1=${#a}
  [ ${#b} -gt $w2 ] && w2=${#b}
  [ ${#c} -gt $w3 ] && w3=${#c}
done
echo
printf "%-${w1}s | %-${w2}s | %-${w3}s | %s\n" configuration build "tests (passed/failed/skipped)" time
printf '%s-|-%s-|-%s-|-%s\n' "$(printf '%*s' $w1 '' | tr ' ' -)" "$(printf '%*s' $w2 '' | tr ' ' -)" \
  "$(printf '%*s' $w3 '' | tr ' ' -)" "-----"
for r in "${rows[@]}"; do
  IFS='|' read -r a b c d <<<"$r"
  printf "%-${w1}s | %-${w2}s | %-${w3}s | %s\n" "$a" "$b" "$c" "$d"
done
echo "total time $(elapsed $matrix_start); logs in $root/"
exit $status
