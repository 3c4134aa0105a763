/* The uvq test harness: assertion macros and the test declaration macros.
 *
 * Every test runs in a process of its own (see run-tests.c). A failed
 * assertion prints what was compared, with both values, the file and the
 * line, runs the registered cleanup hooks (network namespaces must not
 * outlive a failed test) and aborts. RETURN_SKIP() prints its reason and
 * exits with TEST_SKIP_CODE, which ctest is told to count as a skip.
 */
#ifndef UVQ_TEST_TASK_H
#define UVQ_TEST_TASK_H

/* MinGW's printf attribute means msvcrt's format language; the tests
 * print with C99's (__USE_MINGW_ANSI_STDIO). */
#if defined(__MINGW32__)
#define TEST_PRINTF_FORMAT gnu_printf
#else
#define TEST_PRINTF_FORMAT printf
#endif
/* MSVC has neither attribute. */
#if defined(__GNUC__) || defined(__clang__)
#define TEST_ATTRIBUTE(x) __attribute__(x)
#else
#define TEST_ATTRIBUTE(x)
#endif

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The exit code ctest treats as "skipped" (SKIP_RETURN_CODE). */
#define TEST_SKIP_CODE 77

/* Runs the cleanup hooks (see test_atexit()) once; safe to call twice. */
void test_run_cleanups(void);

/* Registers fn(arg) to run when the test ends, however it ends: normal
 * return, RETURN_SKIP, failed assertion or watchdog. Hooks run in reverse
 * order of registration. */
void test_atexit(void (*fn)(void* arg), void* arg);

/* Unregisters the hook fn(arg) if it is still pending. A hook whose arg
 * lives on the test function's stack must cancel itself when the test
 * runs it by hand, since the hooks run after that function has returned. */
void test_atexit_cancel(void (*fn)(void* arg), void* arg);

/* Prints the failure, runs the cleanup hooks and aborts. Never returns. */
void test_fail(const char* file, int line, const char* fmt, ...)
    TEST_ATTRIBUTE((noreturn, format(TEST_PRINTF_FORMAT, 3, 4)));

/* Prints the reason, runs the cleanup hooks and exits with TEST_SKIP_CODE. */
void test_skip(const char* file, int line, const char* fmt, ...)
    TEST_ATTRIBUTE((noreturn, format(TEST_PRINTF_FORMAT, 3, 4)));

#define TEST_IMPL(name)                                                       \
  int run_test_##name(void);                                                  \
  int run_test_##name(void)
#define TEST_DECLARE(name) int run_test_##name(void);

#define FATAL(msg) test_fail(__FILE__, __LINE__, "%s", (msg))

#define RETURN_SKIP(...) test_skip(__FILE__, __LINE__, __VA_ARGS__)

#define ASSERT(expr)                                                          \
  do {                                                                        \
    if (!(expr))                                                              \
      test_fail(__FILE__, __LINE__, "Assertion failed: %s", #expr);           \
  } while (0)

/* Compares two integers as intmax_t (signed) or uintmax_t (unsigned) and
 * prints both values in decimal and hexadecimal on failure. */
#define ASSERT_INT_BASE_(a, op, b, type, fmt)                                 \
  do {                                                                        \
    type eval_a_ = (type) (a);                                                \
    type eval_b_ = (type) (b);                                                \
    if (!(eval_a_ op eval_b_))                                                \
      test_fail(__FILE__, __LINE__,                                           \
                "Assertion failed: %s %s %s (%" fmt " %s %" fmt               \
                "; 0x%jx %s 0x%jx)",                                          \
                #a, #op, #b, eval_a_, #op, eval_b_, (uintmax_t) eval_a_, #op, \
                (uintmax_t) eval_b_);                                         \
  } while (0)

#define ASSERT_EQ(a, b) ASSERT_INT_BASE_(a, ==, b, intmax_t, "jd")
#define ASSERT_NE(a, b) ASSERT_INT_BASE_(a, !=, b, intmax_t, "jd")
#define ASSERT_GE(a, b) ASSERT_INT_BASE_(a, >=, b, intmax_t, "jd")
#define ASSERT_GT(a, b) ASSERT_INT_BASE_(a, >, b, intmax_t, "jd")
#define ASSERT_LE(a, b) ASSERT_INT_BASE_(a, <=, b, intmax_t, "jd")
#define ASSERT_LT(a, b) ASSERT_INT_BASE_(a, <, b, intmax_t, "jd")

#define ASSERT_UINT_EQ(a, b) ASSERT_INT_BASE_(a, ==, b, uintmax_t, "ju")
#define ASSERT_UINT_LE(a, b) ASSERT_INT_BASE_(a, <=, b, uintmax_t, "ju")
#define ASSERT_UINT_GE(a, b) ASSERT_INT_BASE_(a, >=, b, uintmax_t, "ju")

/* 0 expected; prints the libuv error name when the value is a UV_E* code. */
#define ASSERT_OK(a)                                                          \
  do {                                                                        \
    intmax_t eval_a_ = (intmax_t) (a);                                        \
    if (eval_a_ != 0)                                                         \
      test_fail(__FILE__, __LINE__,                                           \
                "Assertion failed: %s == 0 (got %jd, %s)", #a, eval_a_,       \
                test_err_name(eval_a_));                                      \
  } while (0)

/* Error codes: prints both names, e.g. "UV_EINVAL != UV_EBADF". */
#define ASSERT_ERR(expected, a)                                               \
  do {                                                                        \
    intmax_t eval_e_ = (intmax_t) (expected);                                 \
    intmax_t eval_a_ = (intmax_t) (a);                                        \
    if (eval_e_ != eval_a_)                                                   \
      test_fail(__FILE__, __LINE__,                                           \
                "Assertion failed: %s == %s (expected %jd %s, got %jd %s)",   \
                #a, #expected, eval_e_, test_err_name(eval_e_), eval_a_,      \
                test_err_name(eval_a_));                                      \
  } while (0)

/* Bit masks: every bit of `bits` set in `value`, or none of them. */
#define ASSERT_BITS_SET(value, bits)                                          \
  do {                                                                        \
    uintmax_t eval_v_ = (uintmax_t) (value);                                  \
    uintmax_t eval_b_ = (uintmax_t) (bits);                                   \
    if ((eval_v_ & eval_b_) != eval_b_)                                       \
      test_fail(__FILE__, __LINE__,                                           \
                "Assertion failed: %s has all of %s (0x%jx lacks 0x%jx)",     \
                #value, #bits, eval_v_, eval_b_ & ~eval_v_);                  \
  } while (0)

#define ASSERT_BITS_CLEAR(value, bits)                                        \
  do {                                                                        \
    uintmax_t eval_v_ = (uintmax_t) (value);                                  \
    uintmax_t eval_b_ = (uintmax_t) (bits);                                   \
    if ((eval_v_ & eval_b_) != 0)                                             \
      test_fail(__FILE__, __LINE__,                                           \
                "Assertion failed: %s has none of %s (0x%jx has 0x%jx)",      \
                #value, #bits, eval_v_, eval_v_ & eval_b_);                   \
  } while (0)

#define ASSERT_PTR_EQ(a, b)                                                   \
  do {                                                                        \
    const void* eval_a_ = (const void*) (a);                                  \
    const void* eval_b_ = (const void*) (b);                                  \
    if (eval_a_ != eval_b_)                                                   \
      test_fail(__FILE__, __LINE__, "Assertion failed: %s == %s (%p == %p)",  \
                #a, #b, eval_a_, eval_b_);                                    \
  } while (0)

#define ASSERT_PTR_NE(a, b)                                                   \
  do {                                                                        \
    const void* eval_a_ = (const void*) (a);                                  \
    const void* eval_b_ = (const void*) (b);                                  \
    if (eval_a_ == eval_b_)                                                   \
      test_fail(__FILE__, __LINE__, "Assertion failed: %s != %s (%p != %p)",  \
                #a, #b, eval_a_, eval_b_);                                    \
  } while (0)

#define ASSERT_NULL(a) ASSERT_PTR_EQ(a, NULL)
#define ASSERT_NOT_NULL(a) ASSERT_PTR_NE(a, NULL)

#define ASSERT_STR_EQ(a, b)                                                   \
  do {                                                                        \
    const char* eval_a_ = (a);                                                \
    const char* eval_b_ = (b);                                                \
    if (strcmp(eval_a_, eval_b_) != 0)                                        \
      test_fail(__FILE__, __LINE__,                                           \
                "Assertion failed: %s == %s (\"%s\" == \"%s\")", #a, #b,      \
                eval_a_, eval_b_);                                            \
  } while (0)

/* Compares len bytes and prints the first differing offset and a hex dump
 * of up to 16 bytes of each side from there. */
#define ASSERT_MEM_EQ(a, b, len)                                              \
  test_assert_mem_eq_(__FILE__, __LINE__, #a, #b, (a), (b), (size_t) (len))

void test_assert_mem_eq_(const char* file,
                         int line,
                         const char* a_text,
                         const char* b_text,
                         const void* a,
                         const void* b,
                         size_t len);

/* The UV_E* name for a negative value, "" otherwise. */
const char* test_err_name(intmax_t value);

#endif /* UVQ_TEST_TASK_H */
