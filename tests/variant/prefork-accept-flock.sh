#!/bin/sh
exec "${MUXD_TESTS_BUILDDIR:?}/conform" prefork --accept=flock
