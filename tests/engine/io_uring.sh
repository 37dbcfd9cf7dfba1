#!/bin/sh
exec "${MUXD_TESTS_BUILDDIR:?}/conform" io_uring
