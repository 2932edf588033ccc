/* tests/bench/fs/reduction_ceiling.c - the offline data-reduction ceiling of one file: 4 KiB
 * blocks, pattern removal (zero and period <= 16), SHA-256 dedupe, per-block LZ4 or Zstd
 * compression. It must not model anything an inline engine cannot do per block (no cross-block
 * compression, no metadata cost): the result is an upper bound, printed as `name: value` lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lz4.h>
#include <openssl/evp.h>
#include <zstd.h>

#define RC_BLOCK       4096
#define RC_READ_SIZE   (1u << 20)
#define RC_MAX_PERIOD  16
#define RC_HASH_LEN    32
#define RC_INITIAL_CAP (1u << 16)

/* Open addressing on the digest; an all-zero slot is empty (a real SHA-256 of zero is not). */
struct rc_set {
	uint8_t (*slot)[RC_HASH_LEN];
	size_t cap, used;
};

struct rc_stats {
	uint64_t logical_bytes, blocks, zero_blocks, pattern_blocks, dedupe_hits, unique_blocks;
	uint64_t unique_bytes, stored_bytes;
};

enum rc_codec { RC_LZ4, RC_ZSTD };

struct rc_ctx {
	enum rc_codec codec;
	int level;
	ZSTD_CCtx *zc;
	EVP_MD *md;
	EVP_MD_CTX *mdctx;
	struct rc_set set;
	char cbuf[RC_BLOCK * 2];
	struct rc_stats st;
};

static size_t rc_slot_of(const uint8_t *h, size_t cap)
{
	uint64_t v;

	memcpy(&v, h, sizeof(v));
	return v & (cap - 1);
}

static int rc_set_grow(struct rc_set *s)
{
	size_t ncap = s->cap ? s->cap * 2 : RC_INITIAL_CAP;
	uint8_t(*n)[RC_HASH_LEN] = calloc(ncap, RC_HASH_LEN);
	static const uint8_t empty[RC_HASH_LEN];

	if (!n)
		return -ENOMEM;
	for (size_t i = 0; i < s->cap; i++) {
		if (!memcmp(s->slot[i], empty, RC_HASH_LEN))
			continue;
		size_t j = rc_slot_of(s->slot[i], ncap);
		while (memcmp(n[j], empty, RC_HASH_LEN))
			j = (j + 1) & (ncap - 1);
		memcpy(n[j], s->slot[i], RC_HASH_LEN);
	}
	free(s->slot);
	s->slot = n;
	s->cap = ncap;
	return 0;
}

/* Returns 1 if the digest was new (and is now in the set), 0 if it was there, or -errno. */
static int rc_set_insert(struct rc_set *s, const uint8_t *h)
{
	static const uint8_t empty[RC_HASH_LEN];
	size_t j;
	int err;

	if ((s->used + 1) * 2 > s->cap && (err = rc_set_grow(s)))
		return err;
	for (j = rc_slot_of(h, s->cap); memcmp(s->slot[j], empty, RC_HASH_LEN);
	     j = (j + 1) & (s->cap - 1))
		if (!memcmp(s->slot[j], h, RC_HASH_LEN))
			return 0;
	memcpy(s->slot[j], h, RC_HASH_LEN);
	s->used++;
	return 1;
}

/* 0: not a pattern, else the smallest period (1..RC_MAX_PERIOD). */
static int rc_period(const uint8_t *b)
{
	for (int p = 1; p <= RC_MAX_PERIOD; p++)
		if (!memcmp(b, b + p, RC_BLOCK - p))
			return p;
	return 0;
}

static int rc_compressed_size(struct rc_ctx *c, const uint8_t *b)
{
	size_t n;

	if (c->codec == RC_LZ4) {
		int r = LZ4_compress_default((const char *)b, c->cbuf, RC_BLOCK, sizeof(c->cbuf));
		return r > 0 ? r : -EIO;
	}
	n = ZSTD_compressCCtx(c->zc, c->cbuf, sizeof(c->cbuf), b, RC_BLOCK, c->level);
	return ZSTD_isError(n) ? -EIO : (int)n;
}

static int rc_block(struct rc_ctx *c, const uint8_t *b)
{
	uint8_t h[RC_HASH_LEN];
	unsigned int hl;
	int r, p;

	c->st.blocks++;
	p = rc_period(b);
	if (p) {
		if (p == 1 && b[0] == 0)
			c->st.zero_blocks++;
		else
			c->st.pattern_blocks++;
		return 0;
	}
	if (!EVP_DigestInit_ex(c->mdctx, c->md, NULL) || !EVP_DigestUpdate(c->mdctx, b, RC_BLOCK) ||
	    !EVP_DigestFinal_ex(c->mdctx, h, &hl))
		return -EIO;
	r = rc_set_insert(&c->set, h);
	if (r < 0)
		return r;
	if (!r) {
		c->st.dedupe_hits++;
		return 0;
	}
	c->st.unique_blocks++;
	c->st.unique_bytes += RC_BLOCK;
	r = rc_compressed_size(c, b);
	if (r < 0)
		return r;
	c->st.stored_bytes += r < RC_BLOCK ? (uint64_t)r : RC_BLOCK;
	return 0;
}

static int rc_file(struct rc_ctx *c, int fd)
{
	uint8_t *buf = malloc(RC_READ_SIZE);
	size_t fill = 0;
	int err = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, buf + fill, RC_READ_SIZE - fill);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			break;
		}
		c->st.logical_bytes += n;
		fill += n;
		if (n == 0 || fill == RC_READ_SIZE) {
			/* A short tail is stored as a zero-padded block, as a volume would. */
			if (n == 0 && fill % RC_BLOCK) {
				size_t pad = RC_BLOCK - fill % RC_BLOCK;
				memset(buf + fill, 0, pad);
				fill += pad;
			}
			for (size_t off = 0; off < fill && !err; off += RC_BLOCK)
				err = rc_block(c, buf + off);
			fill = 0;
			if (n == 0 || err)
				break;
		}
	}
	free(buf);
	return err;
}

/* Nothing stored (only zero or pattern blocks) is an infinite ratio. */
static double rc_div(uint64_t a, uint64_t b)
{
	if (!b)
		return a ? INFINITY : 0.0;
	return (double)a / (double)b;
}

static void rc_print(const struct rc_ctx *c, const char *path)
{
	const struct rc_stats *s = &c->st;

	printf("file: %s\n", path);
	if (c->codec == RC_LZ4)
		printf("codec: lz4\n");
	else
		printf("codec: zstd:%d\n", c->level);
	printf("logical_bytes: %llu\n", (unsigned long long)s->logical_bytes);
	printf("blocks: %llu\n", (unsigned long long)s->blocks);
	printf("zero_blocks: %llu\n", (unsigned long long)s->zero_blocks);
	printf("pattern_blocks: %llu\n", (unsigned long long)s->pattern_blocks);
	printf("dedupe_hits: %llu\n", (unsigned long long)s->dedupe_hits);
	printf("unique_blocks: %llu\n", (unsigned long long)s->unique_blocks);
	printf("unique_bytes: %llu\n", (unsigned long long)s->unique_bytes);
	printf("stored_bytes: %llu\n", (unsigned long long)s->stored_bytes);
	printf("pattern_dedupe_ratio: %.3f\n", rc_div(s->logical_bytes, s->unique_bytes));
	printf("compression_ratio: %.3f\n", rc_div(s->unique_bytes, s->stored_bytes));
	printf("ceiling_ratio: %.3f\n", rc_div(s->logical_bytes, s->stored_bytes));
}

static int rc_parse_codec(struct rc_ctx *c, const char *arg)
{
	char *end;

	if (!strcmp(arg, "lz4")) {
		c->codec = RC_LZ4;
		return 0;
	}
	if (strncmp(arg, "zstd", 4) || (arg[4] && arg[4] != ':'))
		return -EINVAL;
	c->codec = RC_ZSTD;
	c->level = ZSTD_CLEVEL_DEFAULT;
	if (!arg[4])
		return 0;
	errno = 0;
	long l = strtol(arg + 5, &end, 10);
	if (errno || end == arg + 5 || *end || l < ZSTD_minCLevel() || l > ZSTD_maxCLevel())
		return -EINVAL;
	c->level = (int)l;
	return 0;
}

int main(int argc, char *argv[])
{
	static struct rc_ctx c;
	const char *path = NULL;
	int fd, err, ret = 1;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--codec") && i + 1 < argc) {
			if (rc_parse_codec(&c, argv[++i])) {
				fprintf(stderr, "pstor-reduction-ceiling: bad codec '%s'\n",
				        argv[i]);
				return 2;
			}
		} else if (argv[i][0] != '-' && !path) {
			path = argv[i];
		} else {
			path = NULL;
			break;
		}
	}
	if (!path) {
		fprintf(stderr, "usage: %s [--codec lz4|zstd[:LEVEL]] FILE\n", argv[0]);
		return 2;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "pstor-reduction-ceiling: %s: %s\n", path, strerror(errno));
		return 1;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	c.md = EVP_MD_fetch(NULL, "SHA256", NULL);
	c.mdctx = EVP_MD_CTX_new();
	if (!c.md || !c.mdctx)
		goto err_free;
	if (c.codec == RC_ZSTD && !(c.zc = ZSTD_createCCtx()))
		goto err_free;
	err = rc_file(&c, fd);
	if (err) {
		fprintf(stderr, "pstor-reduction-ceiling: %s: %s\n", path, strerror(-err));
		goto err_free;
	}
	rc_print(&c, path);
	ret = 0;
err_free:
	ZSTD_freeCCtx(c.zc);
	EVP_MD_CTX_free(c.mdctx);
	EVP_MD_free(c.md);
	free(c.set.slot);
	close(fd);
	return ret;
}
