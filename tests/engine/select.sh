#!/bin/sh
exec "${MUXD_TESTS_BUILDDIR:?}/conform" select
