/* oracle.c -- the tests' expected values, from the contract. */
#include "oracle.h"

uint64_t prng_next(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 2685821657736338717u;
}

void upcase_ascii(unsigned char *dst, const unsigned char *src, size_t len)
{
	for (size_t i = 0; i < len; i++)
		dst[i] = src[i] >= 'a' && src[i] <= 'z'
			? (unsigned char)(src[i] - 'a' + 'A') : src[i];
}

void expected_chargen(unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		size_t line = i / 74, col = i % 74;

		if (col < 72)
			buf[i] = (unsigned char)(0x20 + (line + col) % 95);
		else
			buf[i] = col == 72 ? '\r' : '\n';
	}
}

uint64_t splitmix64_nth(uint64_t seed, uint64_t n)
{
	uint64_t z = 0;

	while (n--) {
		seed += 0x9e3779b97f4a7c15u;
		z = seed;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
		z ^= z >> 31;
	}
	return z;
}
