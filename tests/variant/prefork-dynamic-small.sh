#!/bin/sh
# A small breathing pool: at most 8 workers, 1 or 2 of them spare.
exec "${MUXD_TESTS_BUILDDIR:?}/conform" prefork-dynamic --workers 8 --min-spare 1 --max-spare 2
