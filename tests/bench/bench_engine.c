/* tests/bench/bench_engine.c - reduction pipeline cost against the raw libraries, throughput
 * with 1 and 2 threads, and RAM per unique block.
 *
 * Data set: half the blocks are copies of the other half, and each unique block compresses
 * about 2:1 with LZ4. The raw baseline does the same SHA-256 (every block) and LZ4 (unique
 * blocks only, as the engine does) in the same run; overhead = pipeline / raw.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <openssl/evp.h>

#include "bench.h"
#include "engine.h"
#include "ftl.h"

#define BS 4096u

struct dataset {
	uint8_t *data;
	uint32_t nblocks;
	uint8_t *is_unique; /* first occurrence of its content */
};

/* About 2:1 for LZ4: 40% of each block is random, the rest repeats earlier 32-byte runs. */
static void make_block(uint8_t *b, uint64_t *rs)
{
	for (uint32_t i = 0; i < BS; i += 32) {
		uint64_t r = bench_rand(rs);
		if (i >= 64 && (r % 100) < 60) {
			uint32_t src = (uint32_t)((r >> 8) % (i / 32)) * 32;
			memcpy(b + i, b + src, 32);
		} else {
			for (int k = 0; k < 32; k += 8) {
				uint64_t v = bench_rand(rs);
				memcpy(b + i + k, &v, 8);
			}
		}
	}
}

static int dataset_make(struct dataset *d, uint32_t nblocks)
{
	uint64_t rs = 0x1234567887654321ull;
	uint32_t nuniq = nblocks / 2;
	d->nblocks = nblocks;
	d->data = malloc((size_t)nblocks * BS);
	d->is_unique = calloc(nblocks, 1);
	uint32_t *order = malloc(nblocks * sizeof(*order));
	if (!d->data || !d->is_unique || !order)
		return -ENOMEM;
	uint8_t *uniq = malloc((size_t)nuniq * BS);
	if (!uniq)
		return -ENOMEM;
	for (uint32_t i = 0; i < nuniq; i++)
		make_block(uniq + (size_t)i * BS, &rs);
	/* Sequence: every unique block once and one copy of a random one, shuffled. */
	for (uint32_t i = 0; i < nblocks; i++)
		order[i] = i < nuniq ? i : (uint32_t)(bench_rand(&rs) % nuniq);
	for (uint32_t i = nblocks - 1; i > 0; i--) {
		uint32_t j = (uint32_t)(bench_rand(&rs) % (i + 1));
		uint32_t t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	uint8_t *seen = calloc(nuniq, 1);
	for (uint32_t i = 0; i < nblocks; i++) {
		memcpy(d->data + (size_t)i * BS, uniq + (size_t)order[i] * BS, BS);
		if (!seen[order[i]]) {
			seen[order[i]] = 1;
			d->is_unique[i] = 1;
		}
	}
	free(seen);
	free(uniq);
	free(order);
	return 0;
}

/* Keeps the digests from being optimised away (file scope: clang warns on a local sink). */
static volatile uint32_t bench_sink;

static double raw_libraries(const struct dataset *d, double *lz4_ratio)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const EVP_MD *md = EVP_sha256();
	char *cbuf = malloc(LZ4_compressBound(BS));
	uint8_t h[32];
	uint64_t in = 0, out = 0;
	double t0 = bench_now();
	for (uint32_t i = 0; i < d->nblocks; i++) {
		const uint8_t *b = d->data + (size_t)i * BS;
		unsigned hl;
		EVP_DigestInit_ex(ctx, md, NULL);
		EVP_DigestUpdate(ctx, b, BS);
		EVP_DigestFinal_ex(ctx, h, &hl);
		bench_sink += h[0];
		if (d->is_unique[i]) {
			int n =
			    LZ4_compress_default((const char *)b, cbuf, BS, LZ4_compressBound(BS));
			in += BS;
			out += (uint64_t)n;
		}
	}
	double t = bench_now() - t0;
	*lz4_ratio = out ? (double)in / out : 0;
	free(cbuf);
	EVP_MD_CTX_free(ctx);
	return t;
}

struct pipe_arg {
	struct engine *e;
	const struct dataset *d;
	uint32_t from, to;
	int rc;
};

static void *pipe_worker(void *p)
{
	struct pipe_arg *a = p;
	for (uint32_t i = a->from; i < a->to && !a->rc; i++) {
		struct engine_ref r;
		a->rc = engine_write(a->e, a->d->data + (size_t)i * BS, ENGINE_REF_ZERO_VALUE, &r);
	}
	return NULL;
}

/* The memory device is fresh anonymous memory: its first touch of each page costs a page
 * fault and a page clear, which a real device does not. Touch the data area (zeros read as
 * free segments) before the clock starts so the figure is the pipeline's, not the kernel's. */
static int prefault(struct ftl_dev *dev)
{
	struct ftl_superblock_info sb;
	int rc = ftl_read_superblock(dev, &sb);
	if (rc)
		return rc;
	size_t chunk = 1u << 20;
	uint8_t *z = aligned_alloc(4096, chunk);
	if (!z)
		return -ENOMEM;
	memset(z, 0, chunk);
	uint64_t end = sb.data_offset + (uint64_t)sb.segment_count * sb.segment_size;
	for (uint64_t off = sb.data_offset; off < end && !rc; off += chunk)
		rc = ftl_dev_write(dev, z, end - off < chunk ? end - off : chunk, off);
	free(z);
	return rc;
}

struct pipe_result {
	double seconds;
	struct engine_stats es;
	struct ftl_stats fs;
};

static int pipeline(const struct dataset *d, int threads, struct pipe_result *res)
{
	struct ftl_dev *dev = NULL;
	struct ftl *ftl = NULL;
	struct engine *e = NULL;
	int rc = ftl_dev_open_mem((uint64_t)d->nblocks * BS * 2 + (64u << 20), 4096, &dev);
	if (rc)
		goto out;
	rc = ftl_format(dev, NULL);
	if (rc)
		goto out;
	rc = prefault(dev);
	if (rc)
		goto out;
	rc = ftl_open(&(struct ftl_config){.dev = dev}, &ftl);
	if (rc)
		goto out;
	struct engine_config ec = {
	    .ftl = ftl, .block_size = BS, .codec = ENGINE_CODEC_LZ4, .dedupe = true};
	rc = engine_open(&ec, &e);
	if (rc)
		goto out;
	pthread_t t[8];
	struct pipe_arg a[8];
	double t0 = bench_now();
	for (int i = 0; i < threads; i++) {
		a[i] =
		    (struct pipe_arg){.e = e,
		                      .d = d,
		                      .from = (uint32_t)((uint64_t)d->nblocks * i / threads),
		                      .to = (uint32_t)((uint64_t)d->nblocks * (i + 1) / threads)};
		pthread_create(&t[i], NULL, pipe_worker, &a[i]);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		if (a[i].rc && !rc)
			rc = a[i].rc;
	}
	res->seconds = bench_now() - t0;
	engine_get_stats(e, &res->es);
	ftl_get_stats(ftl, &res->fs);
out:
	engine_close(e);
	ftl_close(ftl);
	ftl_dev_close(dev);
	return rc;
}

int bench_engine(void)
{
	struct dataset d;
	uint32_t nblocks = 131072; /* 512 MiB */
	const char *env = getenv("PSTOR_BENCH_BLOCKS");
	if (env)
		nblocks = (uint32_t)strtoul(env, NULL, 0);
	if (dataset_make(&d, nblocks))
		return 1;
	double lz4_ratio = 0, raw = 1e9, pipe1 = 1e9, pipe2 = 1e9;
	struct pipe_result r1 = {0}, r2 = {0};
	/* Best of five for each, interleaved, so a noisy neighbour hurts both sides alike. */
	for (int rep = 0; rep < 5; rep++) {
		double t = raw_libraries(&d, &lz4_ratio);
		if (t < raw)
			raw = t;
		struct pipe_result r;
		if (pipeline(&d, 1, &r)) {
			fprintf(stderr, "pstor-bench: pipeline failed\n");
			return 1;
		}
		if (r.seconds < pipe1) {
			pipe1 = r.seconds;
			r1 = r;
		}
		if (pipeline(&d, 2, &r)) {
			fprintf(stderr, "pstor-bench: pipeline failed\n");
			return 1;
		}
		if (r.seconds < pipe2) {
			pipe2 = r.seconds;
			r2 = r;
		}
	}
	double mb = (double)nblocks * BS / 1e6;
	uint64_t ram = r1.es.mem_index_bytes + r1.es.mem_chunk_table_bytes;
	uint64_t ram_all = ram + r1.fs.mem_l2p_bytes;
	printf("engine.dataset.blocks: %u\n", nblocks);
	printf("engine.dataset.lz4_ratio_of_unique: %.3f\n", lz4_ratio);
	printf("engine.raw.seconds: %.4f\n", raw);
	printf("engine.pipeline.seconds: %.4f\n", pipe1);
	printf("engine.overhead: %.3f\n", pipe1 / raw);
	printf("engine.raw.mbps: %.1f\n", mb / raw);
	printf("engine.mbps.t1: %.1f\n", mb / pipe1);
	printf("engine.mbps.t2: %.1f\n", mb / pipe2);
	printf("engine.reduction.total_ratio: %.3f\n", r1.es.total_ratio);
	printf("engine.reduction.dedupe_ratio: %.3f\n", r1.es.dedupe_ratio);
	printf("engine.reduction.compression_ratio: %.3f\n", r1.es.compression_ratio);
	printf("engine.unique_blocks: %llu\n", (unsigned long long)r1.es.unique_chunks);
	printf("engine.bytes_per_unique_block: %.2f\n", (double)ram / r1.es.unique_chunks);
	printf("engine.bytes_per_unique_block.with_l2p: %.2f\n",
	       (double)ram_all / r1.es.unique_chunks);
	printf("engine.t2.unique_blocks: %llu\n", (unsigned long long)r2.es.unique_chunks);
	free(d.data);
	free(d.is_unique);
	return 0;
}
