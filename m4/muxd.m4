# muxd.m4 -- the project's own autoconf macros.

# AX_MUXD_PTHREAD: find the flag that links POSIX threads; sets PTHREAD_LIBS.
AC_DEFUN([AX_MUXD_PTHREAD], [
  AC_SEARCH_LIBS([pthread_create], [pthread], [],
    [AC_MSG_ERROR([muxd needs POSIX threads])])
])

# MUXD_WARN_CFLAGS: every warning flag from the list the compiler takes,
# substituted as WARN_CFLAGS. Messages are cut to their buffers on purpose
# (a hostile --listen value must not grow a log line), hence
# -Wno-format-truncation.
AC_DEFUN([MUXD_WARN_CFLAGS], [
  WARN_CFLAGS=
  for flag in -Wall -Wextra -Wshadow -Wpointer-arith -Wcast-align \
      -Wwrite-strings -Wstrict-prototypes -Wmissing-prototypes \
      -Wmissing-declarations -Wformat=2 -Wundef -Wvla -Wnull-dereference \
      -Wdouble-promotion -Wimplicit-fallthrough -Wno-format-truncation; do
    AC_MSG_CHECKING([whether $CC accepts $flag])
    saved_CFLAGS=$CFLAGS
    CFLAGS="$CFLAGS -Werror $flag"
    AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
      [AC_MSG_RESULT([yes]); WARN_CFLAGS="$WARN_CFLAGS $flag"],
      [AC_MSG_RESULT([no])])
    CFLAGS=$saved_CFLAGS
  done
  AC_SUBST([WARN_CFLAGS])
])

# MUXD_STACK_CLASH_CFLAGS: -fstack-clash-protection when $CC takes it,
# substituted as STACK_CLASH_CFLAGS. A coroutine's stack has one guard
# page below it; a frame larger than a page could step over it into the
# memory below. With the flag the compiler touches each page of such a
# frame in turn, so the guard page catches it.
AC_DEFUN([MUXD_STACK_CLASH_CFLAGS], [
  AC_MSG_CHECKING([whether $CC accepts -fstack-clash-protection])
  saved_CFLAGS=$CFLAGS
  CFLAGS="$CFLAGS -Werror -fstack-clash-protection"
  AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
    [AC_MSG_RESULT([yes]); STACK_CLASH_CFLAGS=-fstack-clash-protection],
    [AC_MSG_RESULT([no]); STACK_CLASH_CFLAGS=])
  CFLAGS=$saved_CFLAGS
  AC_SUBST([STACK_CLASH_CFLAGS])
])

# MUXD_CHECK_SANITIZER(FLAGS): stop unless $CC compiles and links a
# program with FLAGS (the sanitizer's run-time library may be missing).
AC_DEFUN([MUXD_CHECK_SANITIZER], [
  AC_MSG_CHECKING([whether $CC builds with $1])
  saved_CFLAGS=$CFLAGS
  saved_LDFLAGS=$LDFLAGS
  CFLAGS="$CFLAGS $1"
  LDFLAGS="$LDFLAGS $1"
  AC_LINK_IFELSE([AC_LANG_PROGRAM([], [])],
    [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no])
     AC_MSG_ERROR([$CC cannot build with $1])])
  CFLAGS=$saved_CFLAGS
  LDFLAGS=$saved_LDFLAGS
])
