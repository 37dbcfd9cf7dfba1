/* ref_upper.h -- upper's transform for the reference servers, the same
 * branch-free loop in 32-byte blocks as muxd's (src/services/services.c),
 * so that their rows and muxd's differ only in how they move the bytes:
 * a byte loop with a branch costs 30 to 50 times as much on binary data. */
#ifndef REF_UPPER_H
#define REF_UPPER_H

#include <stddef.h>

static inline unsigned char ref_raise(unsigned char c)
{
	return (unsigned char)(c - (((unsigned char)(c - 'a') < 26) << 5));
}

static inline void ref_upper(unsigned char *p, size_t len)
{
	size_t i = 0;

	for (; i + 32 <= len; i += 32)
		for (size_t j = 0; j < 32; j++)
			p[i + j] = ref_raise(p[i + j]);
	for (; i < len; i++)
		p[i] = ref_raise(p[i]);
}

#endif
