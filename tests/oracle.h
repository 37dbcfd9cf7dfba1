/* oracle.h -- what the tests expect, computed from the contract's words
 * and never from muxd's own code, so that a mistake shared by the two
 * cannot pass. One copy for every test program. */
#ifndef MUXD_TEST_ORACLE_H
#define MUXD_TEST_ORACLE_H

#include <stddef.h>
#include <stdint.h>

/* xorshift64*: test data reproducible across libcs, unlike rand(). */
uint64_t prng_next(uint64_t *state);

/* upper's transform: ASCII a-z to A-Z, every other byte unchanged. */
void upcase_ascii(unsigned char *dst, const unsigned char *src, size_t len);

/* The first len bytes chargen sends (RFC 864 as the contract words it:
 * line k is 72 characters of the printable ring 0x20..0x7e from position
 * k mod 95, then CR LF). */
void expected_chargen(unsigned char *buf, size_t len);

/* The n-th output (n >= 1) of splitmix64 seeded with seed, as the
 * contract words the work service. */
uint64_t splitmix64_nth(uint64_t seed, uint64_t n);

#endif
