/* flash/dev/ftl_crc.c - CRC-32C (Castagnoli) for every on-disk checksum of the FTL.
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it and a slice-by-1 table otherwise; both
 * give the same values (tested). Must stay free of any other dependency.
 *
 * One crc32 instruction waits for the one before it (3 cycles), so long buffers run three
 * streams side by side and join them: the register after data A then B is the register after
 * A shifted over |B| zero bytes, xor B's own register from 0 (the update is linear over GF(2)).
 * A shift over a fixed length is a 32x32 bit matrix, kept as four byte tables.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ftl_dev_int.h"

/* The lengths of the three streams, long buffers first (a 4 KiB chunk takes one long triple,
 * one short one and 264 bytes alone); multiples of 8. */
#define CRC_LONG  1024u
#define CRC_SHORT 128u

static uint32_t crc_table[256];
static uint32_t crc_shift_long[4][256], crc_shift_short[4][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int crc_have_sse42;

/* The register V after N zero bytes, the slow way (only to build the shift tables). */
static uint32_t crc_zeros(uint32_t v, size_t n)
{
	while (n--)
		v = crc_table[v & 0xff] ^ (v >> 8);
	return v;
}

static void crc_shift_init(uint32_t t[4][256], size_t n)
{
	for (unsigned k = 0; k < 4; k++)
		for (uint32_t b = 0; b < 256; b++)
			t[k][b] = crc_zeros(b << (8 * k), n);
}

static inline uint32_t crc_shift(const uint32_t t[4][256], uint32_t v)
{
	return t[0][v & 0xff] ^ t[1][(v >> 8) & 0xff] ^ t[2][(v >> 16) & 0xff] ^ t[3][v >> 24];
}

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
	crc_shift_init(crc_shift_long, CRC_LONG);
	crc_shift_init(crc_shift_short, CRC_SHORT);
#if defined(__x86_64__)
	__builtin_cpu_init();
	crc_have_sse42 = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__)
/* Whole triples of BLK bytes from *P, three streams at a time, joined with shift table T. */
__attribute__((target("sse4.2"))) static uint64_t
crc_hw_triples(uint64_t c, const uint8_t **p, size_t *len, size_t blk, const uint32_t t[4][256])
{
	const uint8_t *q = *p;

	for (; *len >= 3 * blk; *len -= 3 * blk, q += 2 * blk) {
		const uint8_t *end = q + blk;
		uint64_t c1 = 0, c2 = 0;
		do {
			uint64_t v0, v1, v2;
			memcpy(&v0, q, 8);
			memcpy(&v1, q + blk, 8);
			memcpy(&v2, q + 2 * blk, 8);
			c = __builtin_ia32_crc32di(c, v0);
			c1 = __builtin_ia32_crc32di(c1, v1);
			c2 = __builtin_ia32_crc32di(c2, v2);
			q += 8;
		} while (q < end);
		c = crc_shift(t, (uint32_t)c) ^ c1;
		c = crc_shift(t, (uint32_t)c) ^ c2;
	}
	*p = q;
	return c;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = crc;

	c = crc_hw_triples(c, &p, &len, CRC_LONG, crc_shift_long);
	c = crc_hw_triples(c, &p, &len, CRC_SHORT, crc_shift_short);
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	crc = (uint32_t)c;
	while (len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

uint32_t ftl_crc32c(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&crc_once, crc_init);
	crc = ~crc;
#if defined(__x86_64__)
	if (crc_have_sse42)
		return ~crc_hw(crc, data, len);
#endif
	return ~crc_sw(crc, data, len);
}

/* For the test that both paths agree. */
uint32_t ftl_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&crc_once, crc_init);
	return ~crc_sw(~crc, data, len);
}
