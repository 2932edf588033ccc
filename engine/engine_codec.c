/* engine/engine_codec.c - LZ4 and Zstd compression of single blocks, with per-thread contexts;
 * the only file that includes lz4.h / zstd.h, so their errors are translated here (-EBADMSG).
 * Knows nothing of chunks, the FTL or the index.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "engine_int.h"

#define ZSTD_LEVEL_DEFAULT 3
#define ZSTD_LEVEL_MAX     19

static const char *const codec_names[] = {
#define CODEC_NAME(name, str) [ENGINE_CODEC_##name] = str,
    ENGINE_CODEC_LIST(CODEC_NAME)
#undef CODEC_NAME
};

const char *engine_codec_name(enum engine_codec c)
{
	if ((unsigned)c >= ENGINE_CODEC_COUNT)
		return "unknown";
	return codec_names[c];
}

int engine_codec_parse(const char *s, enum engine_codec *codec, int *level)
{
	const char *colon;
	size_t namelen;
	char *end;
	long lv;

	if (!s)
		return -EINVAL;
	colon = strchr(s, ':');
	namelen = colon ? (size_t)(colon - s) : strlen(s);
	for (unsigned c = 0; c < ENGINE_CODEC_COUNT; c++) {
		if (strlen(codec_names[c]) != namelen || strncmp(s, codec_names[c], namelen))
			continue;
		if (!colon) {
			*codec = (enum engine_codec)c;
			*level = c == ENGINE_CODEC_ZSTD ? ZSTD_LEVEL_DEFAULT : 0;
			return 0;
		}
		if (c != ENGINE_CODEC_ZSTD || colon[1] < '0' || colon[1] > '9')
			return -EINVAL;
		errno = 0;
		lv = strtol(colon + 1, &end, 10);
		if (errno || *end || lv < 1 || lv > ZSTD_LEVEL_MAX)
			return -EINVAL;
		*codec = ENGINE_CODEC_ZSTD;
		*level = (int)lv;
		return 0;
	}
	return -EINVAL;
}

/* Per-thread state: codec contexts are reused across blocks (allocating a ZSTD_CCtx costs more
 * than compressing 4 KiB). Freed by the key destructor at thread exit, or by
 * engine_codec_thread_release() when the last engine closes. */
struct codec_tls {
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
	uint8_t *stage; /* engine_codec_stage(), allocated on first use */
	uint8_t buf[ENGINE_BLOCK_MAX];
};

static pthread_once_t codec_once = PTHREAD_ONCE_INIT;
static pthread_key_t codec_key;
static _Thread_local struct codec_tls *codec_tls;

static void codec_tls_free(void *arg)
{
	struct codec_tls *t = arg;

	if (!t)
		return;
	ZSTD_freeCCtx(t->cctx);
	ZSTD_freeDCtx(t->dctx);
	free(t->stage);
	free(t);
}

static void codec_global_init(void)
{
	pthread_key_create(&codec_key, codec_tls_free);
}

static struct codec_tls *codec_tls_get(void)
{
	if (codec_tls)
		return codec_tls;
	pthread_once(&codec_once, codec_global_init);
	codec_tls = calloc(1, sizeof(*codec_tls));
	if (codec_tls)
		pthread_setspecific(codec_key, codec_tls);
	return codec_tls;
}

void engine_codec_thread_release(void)
{
	if (!codec_tls)
		return;
	pthread_setspecific(codec_key, NULL);
	codec_tls_free(codec_tls);
	codec_tls = NULL;
}

/* Samples of the incompressibility probe (about: the step is odd), and how many distinct byte
 * values among them make a block look random: 128 bytes of random data show 101 distinct
 * values on average (256 * (1 - (255/256)^128), standard deviation about 4.4), text about 20,
 * and a block half random and half a fill (fio's buffer_compress_percentage=50) at most 65. */
#define PROBE_SAMPLES  128u
#define PROBE_DISTINCT 90u

/* Whether SRC (LEN >= 2 * PROBE_SAMPLES bytes) looks like random bytes, which no codec shrinks:
 * the distinct values of every (LEN / PROBE_SAMPLES - 1)-th byte. A table of flags, not a
 * bitmap, so the samples do not form a chain of read-modify-writes. On a 4 KiB block it costs
 * about 0.09 us against the 0.76 us LZ4 spends failing on random data (and 0.7-7 us
 * compressing others). It cannot see repeats of random runs inside a block: of a 16 MiB
 * libcrypto.so, 23 blocks LZ4 would have shrunk (36 KB of 6.4 MB of savings) are stored raw. */
static bool looks_random(const uint8_t *src, uint32_t len)
{
	uint8_t seen[256];
	/* An odd step, so the samples fall on every offset within a word: fio's random buffers
	 * (a 64-bit generator) take only 2..64 values in the first byte of each 8 bytes, and a
	 * step of 32 saw them as text. */
	uint32_t step = len / PROBE_SAMPLES - 1, n = 0;

	memset(seen, 0, sizeof(seen));
	for (uint32_t i = 0; i < len; i += step)
		seen[src[i]] = 1;
	for (uint32_t i = 0; i < 256; i++)
		n += seen[i];
	return n >= PROBE_DISTINCT;
}

int engine_codec_compress_into(enum engine_codec codec, int level, const void *src, uint32_t len,
                               void *dst, uint32_t *out_len)
{
	/* Worth storing compressed only if it saves at least 1/8: cap the output there, so the
	 * compressor gives up early on data that does not shrink. */
	uint32_t cap = len - len / 8;
	struct codec_tls *t;
	size_t zn;
	int n;

	*out_len = 0;
	if (codec == ENGINE_CODEC_NONE || len > ENGINE_BLOCK_MAX || len > INT_MAX)
		return 0;
	if (len >= 2 * PROBE_SAMPLES && looks_random(src, len))
		return 1; /* store raw without a compression attempt */
	switch (codec) {
	case ENGINE_CODEC_LZ4:
		n = LZ4_compress_default(src, dst, (int)len, (int)cap);
		if (n <= 0)
			return 0; /* did not fit in CAP: store raw */
		*out_len = (uint32_t)n;
		return 0;
	case ENGINE_CODEC_ZSTD:
		t = codec_tls_get();
		if (!t)
			return -ENOMEM;
		if (!t->cctx) {
			t->cctx = ZSTD_createCCtx();
			if (!t->cctx)
				return -ENOMEM;
		}
		zn = ZSTD_compressCCtx(t->cctx, dst, cap, src, len,
		                       level ? level : ZSTD_LEVEL_DEFAULT);
		if (ZSTD_isError(zn)) {
			if (ZSTD_getErrorCode(zn) == ZSTD_error_memory_allocation)
				return -ENOMEM;
			return 0; /* dstSize_tooSmall and friends: store raw */
		}
		*out_len = (uint32_t)zn;
		return 0;
	default:
		return -EINVAL;
	}
}

int engine_codec_compress(enum engine_codec codec, int level, const void *src, uint32_t len,
                          const void **out, uint32_t *out_len)
{
	struct codec_tls *t = NULL;
	int rc;

	*out = NULL;
	*out_len = 0;
	if (codec != ENGINE_CODEC_NONE) {
		t = codec_tls_get();
		if (!t)
			return -ENOMEM;
	}
	rc = engine_codec_compress_into(codec, level, src, len, t ? t->buf : NULL, out_len);
	if (rc == 0 && *out_len)
		*out = t->buf;
	return rc;
}

uint8_t *engine_codec_stage(void)
{
	struct codec_tls *t = codec_tls_get();

	if (!t)
		return NULL;
	if (!t->stage)
		t->stage = malloc(ENGINE_BLOCK_MAX);
	return t->stage;
}

int engine_codec_decompress(enum engine_codec codec, const void *src, uint32_t src_len, void *dst,
                            uint32_t dst_len)
{
	struct codec_tls *t;
	size_t zn;
	int n;

	if (src_len > INT_MAX || dst_len > INT_MAX)
		return -EBADMSG;
	switch (codec) {
	case ENGINE_CODEC_NONE:
		if (src_len != dst_len)
			return -EBADMSG;
		if (src != dst)
			memmove(dst, src, dst_len);
		return 0;
	case ENGINE_CODEC_LZ4:
		n = LZ4_decompress_safe(src, dst, (int)src_len, (int)dst_len);
		return n == (int)dst_len ? 0 : -EBADMSG;
	case ENGINE_CODEC_ZSTD:
		t = codec_tls_get();
		if (!t)
			return -ENOMEM;
		if (!t->dctx) {
			t->dctx = ZSTD_createDCtx();
			if (!t->dctx)
				return -ENOMEM;
		}
		zn = ZSTD_decompressDCtx(t->dctx, dst, dst_len, src, src_len);
		if (ZSTD_isError(zn)) {
			if (ZSTD_getErrorCode(zn) == ZSTD_error_memory_allocation)
				return -ENOMEM;
			return -EBADMSG;
		}
		return zn == dst_len ? 0 : -EBADMSG;
	default:
		return -EINVAL;
	}
}
