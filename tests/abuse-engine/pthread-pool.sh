#!/bin/sh
# --workers 64: the abuse cases hold up to 64 clients at once (idle
# connections, slowloris beside a normal client); cases that need a
# different pool size pass their own --workers and say so in the log.
exec "${MUXD_TESTS_BUILDDIR:?}/abuse" pthread-pool --workers 64
