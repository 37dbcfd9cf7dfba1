#!/bin/sh
exec "${MUXD_TESTS_BUILDDIR:?}/abuse" io_uring
