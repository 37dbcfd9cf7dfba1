#!/bin/sh
exec "${MUXD_TESTS_BUILDDIR:?}/abuse" select
