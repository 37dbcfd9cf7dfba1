#!/bin/sh
exec "${MUXD_TESTS_BUILDDIR:?}/completion" io_uring
