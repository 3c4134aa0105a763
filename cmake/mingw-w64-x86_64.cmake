# Cross-compiling for 64-bit Windows with Debian's MinGW-w64 toolchain
# (gcc-mingw-w64-x86-64). Used by tools/deps-win.sh for libuv and by the
# `windows` configuration of tools/test.sh for uvq itself:
#
#   cmake -S . -B build/win -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake \
#         -DUVQ_WIN_PREFIX=$(bash tools/deps-win.sh)
#
# The tests then run under Wine through CMAKE_CROSSCOMPILING_EMULATOR
# (tools/wine-run.sh), which the project's CMakeLists.txt sets when it is
# not given.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(UVQ_MINGW_TRIPLE x86_64-w64-mingw32)
# The -win32 variants use native Windows threads; the -posix ones would
# need libwinpthread-1.dll next to every executable.
set(CMAKE_C_COMPILER ${UVQ_MINGW_TRIPLE}-gcc-win32)
set(CMAKE_RC_COMPILER ${UVQ_MINGW_TRIPLE}-windres)
set(CMAKE_AR ${UVQ_MINGW_TRIPLE}-gcc-ar-win32 CACHE FILEPATH "")
set(CMAKE_RANLIB ${UVQ_MINGW_TRIPLE}-gcc-ranlib-win32 CACHE FILEPATH "")

set(CMAKE_FIND_ROOT_PATH /usr/${UVQ_MINGW_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# Packages also come from CMAKE_PREFIX_PATH (the cross-built libuv of
# tools/deps-win.sh lives outside the MinGW root).
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# Windows 10 is the oldest target, and what Wine reports itself as.
# WSASendMsg needs Vista; the newer options (ECN, UDP offloads) are probed
# at run time, so this only makes their names visible.
add_compile_definitions(_WIN32_WINNT=0x0A00 WINVER=0x0A00)
