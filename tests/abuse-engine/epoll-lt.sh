#!/bin/sh
exec "${MUXD_TESTS_BUILDDIR:?}/abuse" epoll-lt
