#!/bin/sh
# --workers 64: conform runs 50 clients at once; the default pool of 8 would
# serve them 8 at a time, 64 workers keep every case's meaning.
exec "${MUXD_TESTS_BUILDDIR:?}/conform" prefork --workers 64
