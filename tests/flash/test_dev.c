/* tests/flash/test_dev.c - criterion suite for the namespace backends (ftl_dev_*): the memory
 * device's fault seams, the image-file and loop-device backends, argument checks and counters.
 * Every test checks real bytes and cleans up what it made (temp files, loop devices).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ftl.h"
#include "ftl_dev_fault.h"

#define BS 4096u

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 12) + 1u);
}

static bool is_zero(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i])
			return false;
	}
	return true;
}

/* Per-test scratch state; the fini hook undoes whatever the test got to make. */
static struct {
	struct ftl_dev *dev;
	char dir[64];
	char img[96];
	char loop[64];
} t;

static void scratch_init(void)
{
	memset(&t, 0, sizeof(t));
	strcpy(t.dir, "/tmp/pstor-test-dev-XXXXXX");
	cr_assert_not_null(mkdtemp(t.dir));
	snprintf(t.img, sizeof(t.img), "%s/img", t.dir);
}

static void scratch_fini(void)
{
	char cmd[128];

	ftl_dev_close(t.dev);
	t.dev = NULL;
	if (t.loop[0]) {
		snprintf(cmd, sizeof(cmd), "losetup -d %s", t.loop);
		if (system(cmd) != 0)
			fprintf(stderr, "test_dev: could not detach %s\n", t.loop);
	}
	unlink(t.img);
	rmdir(t.dir);
}

TestSuite(ftl_dev, .init = scratch_init, .fini = scratch_fini, .timeout = 60);

static struct ftl_dev *open_mem(uint64_t size)
{
	cr_assert_eq(ftl_dev_open_mem(size, BS, &t.dev), 0);
	return t.dev;
}

/* ------------------------------------------------------------------------------------------ */
/* Memory device                                                                                */
/* ------------------------------------------------------------------------------------------ */

Test(ftl_dev, mem_round_trip)
{
	struct ftl_dev *dev = open_mem(1 << 20);
	uint8_t in[3 * BS], out[3 * BS];

	cr_expect_eq(ftl_dev_kind(dev), FTL_DEV_MEM);
	cr_expect_eq(ftl_dev_size(dev), 1 << 20);
	cr_expect_eq(ftl_dev_block_size(dev), BS);
	fill(in, sizeof(in), 1);
	cr_assert_eq(ftl_dev_write(dev, in, sizeof(in), 2 * BS), 0);
	cr_assert_eq(ftl_dev_read(dev, out, sizeof(out), 2 * BS), 0);
	cr_assert_arr_eq(in, out, sizeof(in));
	/* Neighbours untouched. */
	cr_assert_eq(ftl_dev_read(dev, out, BS, BS), 0);
	cr_assert(is_zero(out, BS));
	cr_assert_eq(ftl_dev_read(dev, out, BS, 5 * BS), 0);
	cr_assert(is_zero(out, BS));
}

Test(ftl_dev, sparse_mem_keeps_the_head_of_each_write_and_reads_zeros_after_it)
{
	uint8_t in[4 * BS], out[4 * BS];

	cr_assert_eq(ftl_dev_open_mem_sparse(1 << 20, BS, BS + 1, &t.dev), -EINVAL);
	cr_assert_eq(ftl_dev_open_mem_sparse(1 << 20, BS, 2 * BS, &t.dev), 0);
	/* Old bytes under the dropped tail must not show through either. */
	memset(in, 0xa5, sizeof(in));
	cr_assert_eq(ftl_dev_write(t.dev, in, 2 * BS, 4 * BS), 0);
	fill(in, sizeof(in), 3);
	cr_assert_eq(ftl_dev_write(t.dev, in, sizeof(in), 2 * BS), 0);
	cr_assert_eq(ftl_dev_read(t.dev, out, sizeof(out), 2 * BS), 0);
	cr_assert_arr_eq(in, out, 2 * BS);
	cr_assert(is_zero(out + 2 * BS, 2 * BS));
	/* A write no longer than the head lands whole, and survives a flush and a power cut. */
	cr_assert_eq(ftl_dev_write(t.dev, in, BS, 10 * BS), 0);
	cr_assert_eq(ftl_dev_flush(t.dev), 0);
	cr_assert_eq(ftl_dev_mem_power_cut(t.dev, false), 0);
	cr_assert_eq(ftl_dev_read(t.dev, out, BS, 10 * BS), 0);
	cr_assert_arr_eq(in, out, BS);
}

Test(ftl_dev, mem_open_rejects_bad_geometry)
{
	struct ftl_dev *dev = NULL;

	cr_expect_eq(ftl_dev_open_mem(1 << 20, 1000, &dev), -EINVAL);
	cr_expect_eq(ftl_dev_open_mem(1 << 20, 256, &dev), -EINVAL);
	cr_expect_eq(ftl_dev_open_mem(1 << 20, 131072, &dev), -EINVAL);
	cr_expect_eq(ftl_dev_open_mem(0, BS, &dev), -EINVAL);
	cr_expect_eq(ftl_dev_open_mem(BS + 512, BS, &dev), -EINVAL);
	cr_expect_null(dev);
}

Test(ftl_dev, rejects_unaligned_and_out_of_bounds)
{
	uint64_t size = 64 * BS;
	struct ftl_dev *dev = open_mem(size);
	uint8_t buf[2 * BS];

	fill(buf, sizeof(buf), 2);
	cr_expect_eq(ftl_dev_write(dev, buf, BS, 1), -EINVAL);
	cr_expect_eq(ftl_dev_write(dev, buf, BS - 512, 0), -EINVAL);
	cr_expect_eq(ftl_dev_write(dev, buf, 0, 0), -EINVAL);
	cr_expect_eq(ftl_dev_write(dev, buf, BS, size), -EINVAL);
	cr_expect_eq(ftl_dev_write(dev, buf, 2 * BS, size - BS), -EINVAL);
	cr_expect_eq(ftl_dev_write(dev, buf, BS, UINT64_MAX - BS + 1), -EINVAL);
	cr_expect_eq(ftl_dev_write(dev, NULL, BS, 0), -EINVAL);
	cr_expect_eq(ftl_dev_read(dev, buf, BS, 100), -EINVAL);
	cr_expect_eq(ftl_dev_read(dev, buf, 2 * BS, size - BS), -EINVAL);
	cr_expect_eq(ftl_dev_trim(dev, BS, 100), -EINVAL);
	cr_expect_eq(ftl_dev_trim(dev, size, BS), -EINVAL);
	/* The last block is inside. */
	cr_expect_eq(ftl_dev_write(dev, buf, BS, size - BS), 0);
	/* Nothing rejected reached the device. */
	cr_assert_eq(ftl_dev_read(dev, buf, BS, 0), 0);
	cr_assert(is_zero(buf, BS));
}

Test(ftl_dev, power_cut_keeps_flushed_and_drops_unflushed)
{
	struct ftl_dev *dev = open_mem(1 << 20);
	uint8_t a[BS], b[BS], c[BS], out[BS];

	fill(a, BS, 10);
	fill(b, BS, 11);
	fill(c, BS, 12);
	cr_assert_eq(ftl_dev_write(dev, a, BS, 0), 0);
	cr_assert_eq(ftl_dev_flush(dev), 0);
	cr_assert_eq(ftl_dev_write(dev, b, BS, 0), 0);  /* overwrites flushed data */
	cr_assert_eq(ftl_dev_write(dev, c, BS, BS), 0); /* fresh block */
	cr_assert_eq(ftl_dev_read(dev, out, BS, 0), 0); /* reads see volatile data */
	cr_assert_arr_eq(out, b, BS);

	cr_assert_eq(ftl_dev_mem_power_cut(dev, false), 0);
	cr_assert_eq(ftl_dev_read(dev, out, BS, 0), 0);
	cr_assert_arr_eq(out, a, BS);
	cr_assert_eq(ftl_dev_read(dev, out, BS, BS), 0);
	cr_assert(is_zero(out, BS));

	/* A second cut with nothing unflushed changes nothing. */
	cr_assert_eq(ftl_dev_mem_power_cut(dev, true), 0);
	cr_assert_eq(ftl_dev_read(dev, out, BS, 0), 0);
	cr_assert_arr_eq(out, a, BS);
}

Test(ftl_dev, tear_last_keeps_exactly_first_half)
{
	struct ftl_dev *dev = open_mem(1 << 20);
	uint8_t old[5 * BS], other[BS], nw[5 * BS], out[5 * BS];

	fill(old, sizeof(old), 20);
	fill(other, sizeof(other), 21);
	fill(nw, sizeof(nw), 22);
	cr_assert_eq(ftl_dev_write(dev, old, sizeof(old), 8 * BS), 0);
	cr_assert_eq(ftl_dev_flush(dev), 0);
	cr_assert_eq(ftl_dev_write(dev, other, BS, 0), 0);           /* earlier unflushed */
	cr_assert_eq(ftl_dev_write(dev, nw, sizeof(nw), 8 * BS), 0); /* the last write */

	cr_assert_eq(ftl_dev_mem_power_cut(dev, true), 0);
	cr_assert_eq(ftl_dev_read(dev, out, sizeof(out), 8 * BS), 0);
	/* 5 blocks: the first 2 land, the last 3 are the old flushed data. */
	cr_assert_arr_eq(out, nw, 2 * BS);
	cr_assert_arr_eq(out + 2 * BS, old + 2 * BS, 3 * BS);
	cr_assert_eq(ftl_dev_read(dev, out, BS, 0), 0);
	cr_assert(is_zero(out, BS), "only the last write may survive a cut");
}

Test(ftl_dev, tear_last_of_one_block_keeps_nothing)
{
	struct ftl_dev *dev = open_mem(1 << 20);
	uint8_t in[BS], out[BS];

	fill(in, BS, 23);
	cr_assert_eq(ftl_dev_write(dev, in, BS, 3 * BS), 0);
	cr_assert_eq(ftl_dev_mem_power_cut(dev, true), 0);
	cr_assert_eq(ftl_dev_read(dev, out, BS, 3 * BS), 0);
	cr_assert(is_zero(out, BS));
}

Test(ftl_dev, injected_read_eio_hits_only_overlapping_reads_count_times)
{
	struct ftl_dev *dev = open_mem(1 << 20);
	struct ftl_dev_stats st;
	uint8_t in[4 * BS], out[4 * BS];

	fill(in, sizeof(in), 30);
	cr_assert_eq(ftl_dev_write(dev, in, sizeof(in), 0), 0);
	cr_assert_eq(ftl_dev_mem_inject(dev, FTL_FAULT_READ_EIO, 2 * BS + 100, 10, 2), 0);
	cr_expect_eq(ftl_dev_read(dev, out, 2 * BS, 0), 0);           /* before the range */
	cr_expect_eq(ftl_dev_read(dev, out, BS, 3 * BS), 0);          /* after it */
	cr_expect_eq(ftl_dev_write(dev, in + 2 * BS, BS, 2 * BS), 0); /* writes pass */
	cr_expect_eq(ftl_dev_read(dev, out, 4 * BS, 0), -EIO);        /* overlaps */
	cr_expect_eq(ftl_dev_read(dev, out, BS, 2 * BS), -EIO);       /* overlaps, last count */
	cr_expect_eq(ftl_dev_read(dev, out, 4 * BS, 0), 0);           /* used up */
	cr_assert_arr_eq(out, in, sizeof(in));
	ftl_dev_get_stats(dev, &st);
	cr_expect_eq(st.read_errors, 2);
	cr_expect_eq(st.reads, 3);
}

Test(ftl_dev, injected_write_eio_hits_only_overlapping_writes_count_times)
{
	struct ftl_dev *dev = open_mem(1 << 20);
	struct ftl_dev_stats st;
	uint8_t a[BS], b[BS], out[BS];

	fill(a, BS, 31);
	fill(b, BS, 32);
	cr_assert_eq(ftl_dev_write(dev, a, BS, 5 * BS), 0);
	cr_assert_eq(ftl_dev_mem_inject(dev, FTL_FAULT_WRITE_EIO, 5 * BS, BS, 1), 0);
	cr_expect_eq(ftl_dev_write(dev, b, BS, 4 * BS), 0);
	cr_expect_eq(ftl_dev_write(dev, b, BS, 6 * BS), 0);
	cr_expect_eq(ftl_dev_read(dev, out, BS, 5 * BS), 0); /* reads are not affected */
	cr_expect_eq(ftl_dev_write(dev, b, BS, 5 * BS), -EIO);
	/* A failed write changes nothing. */
	cr_assert_eq(ftl_dev_read(dev, out, BS, 5 * BS), 0);
	cr_assert_arr_eq(out, a, BS);
	cr_expect_eq(ftl_dev_write(dev, b, BS, 5 * BS), 0);
	cr_assert_eq(ftl_dev_read(dev, out, BS, 5 * BS), 0);
	cr_assert_arr_eq(out, b, BS);
	ftl_dev_get_stats(dev, &st);
	cr_expect_eq(st.write_errors, 1);
	cr_expect_eq(st.writes, 4);
}

Test(ftl_dev, inject_count_zero_disarms)
{
	struct ftl_dev *dev = open_mem(1 << 20);
	uint8_t out[BS];

	cr_assert_eq(ftl_dev_mem_inject(dev, FTL_FAULT_READ_EIO, 0, BS, 5), 0);
	cr_assert_eq(ftl_dev_read(dev, out, BS, 0), -EIO);
	cr_assert_eq(ftl_dev_mem_inject(dev, FTL_FAULT_READ_EIO, 0, 1, 0), 0);
	cr_assert_eq(ftl_dev_read(dev, out, BS, 0), 0);
	cr_expect_eq(ftl_dev_mem_inject(dev, FTL_FAULT_READ_EIO, 1 << 20, 1, 1), -EINVAL);
	cr_expect_eq(ftl_dev_mem_inject(dev, FTL_FAULT_READ_EIO, 0, 0, 1), -EINVAL);
	cr_expect_eq(ftl_dev_mem_inject(dev, (enum ftl_fault)7, 0, 1, 1), -EINVAL);
}

Test(ftl_dev, flip_bit_changes_exactly_one_bit_in_both_images)
{
	struct ftl_dev *dev = open_mem(1 << 20);
	uint8_t in[2 * BS], out[2 * BS];
	unsigned diff = 0;

	fill(in, sizeof(in), 40);
	cr_assert_eq(ftl_dev_write(dev, in, sizeof(in), 0), 0);
	cr_assert_eq(ftl_dev_flush(dev), 0);
	cr_assert_eq(ftl_dev_mem_flip_bit(dev, 5000, 3), 0);
	cr_assert_eq(ftl_dev_read(dev, out, sizeof(out), 0), 0);
	for (size_t i = 0; i < sizeof(in); i++)
		diff += (unsigned)__builtin_popcount(in[i] ^ out[i]);
	cr_assert_eq(diff, 1);
	cr_assert_eq(in[5000] ^ out[5000], 1u << 3);
	/* The durable image rotted too: a power cut does not heal it. */
	cr_assert_eq(ftl_dev_mem_power_cut(dev, false), 0);
	cr_assert_eq(ftl_dev_read(dev, out, sizeof(out), 0), 0);
	cr_assert_eq(in[5000] ^ out[5000], 1u << 3);
	cr_expect_eq(ftl_dev_mem_flip_bit(dev, 1 << 20, 0), -EINVAL);
	cr_expect_eq(ftl_dev_mem_flip_bit(dev, 0, 8), -EINVAL);
}

Test(ftl_dev, trim_zeroes_and_is_counted_per_block)
{
	struct ftl_dev *dev = open_mem(1 << 20);
	uint8_t in[4 * BS], out[4 * BS];
	struct ftl_dev_stats st;

	fill(in, sizeof(in), 50);
	cr_assert_eq(ftl_dev_write(dev, in, sizeof(in), 0), 0);
	cr_assert_eq(ftl_dev_flush(dev), 0);
	cr_assert_eq(ftl_dev_mem_trimmed_bytes(dev), 0);
	cr_assert_eq(ftl_dev_trim(dev, BS, 2 * BS), 0);
	cr_assert_eq(ftl_dev_read(dev, out, sizeof(out), 0), 0);
	cr_assert_arr_eq(out, in, BS);
	cr_assert(is_zero(out + BS, 2 * BS));
	cr_assert_arr_eq(out + 3 * BS, in + 3 * BS, BS);
	cr_assert_eq(ftl_dev_mem_trimmed_bytes(dev), 2 * BS);

	/* Re-trimming a hole does not count twice. */
	cr_assert_eq(ftl_dev_trim(dev, BS, 3 * BS), 0);
	cr_assert_eq(ftl_dev_mem_trimmed_bytes(dev), 3 * BS);
	/* Writing into a hole fills it. */
	cr_assert_eq(ftl_dev_write(dev, in, BS, 2 * BS), 0);
	cr_assert_eq(ftl_dev_mem_trimmed_bytes(dev), 2 * BS);
	/* ... unless the write is lost to a power cut: the hole comes back. */
	cr_assert_eq(ftl_dev_mem_power_cut(dev, false), 0);
	cr_assert_eq(ftl_dev_mem_trimmed_bytes(dev), 3 * BS);
	cr_assert_eq(ftl_dev_read(dev, out, BS, 2 * BS), 0);
	cr_assert(is_zero(out, BS));
	/* ... and is a hole like any other: filling it again counts. */
	cr_assert_eq(ftl_dev_write(dev, in, BS, 2 * BS), 0);
	cr_assert_eq(ftl_dev_flush(dev), 0);
	cr_assert_eq(ftl_dev_mem_trimmed_bytes(dev), 2 * BS);

	ftl_dev_get_stats(dev, &st);
	cr_expect_eq(st.trims, 2);
	cr_expect_eq(st.bytes_trimmed, 5 * BS);
}

Test(ftl_dev, trim_of_unflushed_write_survives_power_cut)
{
	struct ftl_dev *dev = open_mem(1 << 20);
	uint8_t in[BS], out[BS];

	fill(in, BS, 51);
	cr_assert_eq(ftl_dev_write(dev, in, BS, 0), 0);
	cr_assert_eq(ftl_dev_flush(dev), 0);
	cr_assert_eq(ftl_dev_write(dev, in, BS, BS), 0);
	cr_assert_eq(ftl_dev_trim(dev, 0, 2 * BS), 0);
	cr_assert_eq(ftl_dev_mem_power_cut(dev, true), 0);
	cr_assert_eq(ftl_dev_read(dev, out, BS, 0), 0);
	cr_assert(is_zero(out, BS), "TRIM is durable at once on the memory device");
	cr_assert_eq(ftl_dev_mem_trimmed_bytes(dev), 2 * BS);
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, resident = 0;

	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%ld %ld", &pages, &resident), 2);
	fclose(f);
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

Test(ftl_dev, mem_device_costs_no_memory_until_written)
{
	long before = rss_kib();
	struct ftl_dev *dev = open_mem(UINT64_C(1) << 30);
	uint8_t buf[BS];

	/* Reading an unwritten block maps the shared zero page, not new memory. */
	for (uint64_t off = 0; off < (UINT64_C(1) << 30); off += 64 * 1024 * 1024)
		cr_assert_eq(ftl_dev_read(dev, buf, BS, off), 0);
	cr_assert_eq(ftl_dev_flush(dev), 0);
	cr_expect_lt(rss_kib() - before, 8 * 1024, "1 GiB device grew RSS by %ld KiB",
	             rss_kib() - before);
}

struct hammer_arg {
	struct ftl_dev *dev;
	unsigned id;
	int failures;
};

#define HAMMER_OPS 500

static void *hammer(void *p)
{
	struct hammer_arg *a = p;
	uint8_t in[BS], out[BS];

	fill(in, BS, a->id);
	for (unsigned i = 0; i < HAMMER_OPS; i++) {
		uint64_t off = (uint64_t)(a->id * HAMMER_OPS + i) * BS;

		if (ftl_dev_write(a->dev, in, BS, off) != 0 ||
		    ftl_dev_read(a->dev, out, BS, off) != 0 || memcmp(in, out, BS) != 0)
			a->failures++;
	}
	return NULL;
}

Test(ftl_dev, stats_count_concurrent_io_exactly)
{
	enum { THREADS = 4 };
	struct ftl_dev *dev = open_mem((uint64_t)THREADS * HAMMER_OPS * BS);
	struct hammer_arg args[THREADS];
	pthread_t th[THREADS];
	struct ftl_dev_stats st;
	uint8_t buf[BS];

	for (unsigned i = 0; i < THREADS; i++) {
		args[i] = (struct hammer_arg){.dev = dev, .id = i};
		cr_assert_eq(pthread_create(&th[i], NULL, hammer, &args[i]), 0);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(args[i].failures, 0);
	}
	cr_assert_eq(ftl_dev_flush(dev), 0);
	cr_assert_eq(ftl_dev_trim(dev, 0, 2 * BS), 0);
	cr_assert_eq(ftl_dev_read(dev, buf, BS, 17), -EINVAL); /* rejected: not counted */
	ftl_dev_get_stats(dev, &st);
	cr_expect_eq(st.writes, THREADS * HAMMER_OPS);
	cr_expect_eq(st.reads, THREADS * HAMMER_OPS);
	cr_expect_eq(st.bytes_written, (uint64_t)THREADS * HAMMER_OPS * BS);
	cr_expect_eq(st.bytes_read, (uint64_t)THREADS * HAMMER_OPS * BS);
	cr_expect_eq(st.flushes, 1);
	cr_expect_eq(st.trims, 1);
	cr_expect_eq(st.bytes_trimmed, 2 * BS);
	cr_expect_eq(st.read_errors, 0);
	cr_expect_eq(st.write_errors, 0);
}

Test(ftl_dev, mem_identify_made_up_and_no_smart)
{
	struct ftl_dev *dev = open_mem(1 << 20);
	struct ftl_dev_identity id;
	struct ftl_dev_smart smart;

	cr_assert_eq(ftl_dev_identify(dev, &id), 0);
	cr_expect_str_eq(id.model, "pstorfs memory device");
	cr_expect_neq(id.serial[0], '\0');
	cr_expect_eq(id.lba_size, BS);
	cr_expect_eq(id.capacity_bytes, 1 << 20);
	cr_expect_eq(id.nsid, 0);
	cr_expect_str_eq(id.cache, "memory");
	cr_expect_eq(ftl_dev_smart(dev, &smart), -EOPNOTSUPP);
}

Test(ftl_dev, kind_names)
{
	cr_expect_str_eq(ftl_dev_kind_name(FTL_DEV_FILE), "file");
	cr_expect_str_eq(ftl_dev_kind_name(FTL_DEV_BLOCK), "block");
	cr_expect_str_eq(ftl_dev_kind_name(FTL_DEV_NVME), "nvme");
	cr_expect_str_eq(ftl_dev_kind_name(FTL_DEV_MEM), "mem");
	cr_expect_str_eq(ftl_dev_kind_name((enum ftl_dev_kind)42), "unknown");
}

/* ------------------------------------------------------------------------------------------ */
/* Image file                                                                                   */
/* ------------------------------------------------------------------------------------------ */

Test(ftl_dev, file_create_is_sparse)
{
	struct stat st;

	cr_assert_eq(ftl_dev_open(t.img, FTL_DEV_CREATE, 64 << 20, &t.dev), 0);
	cr_assert_eq(ftl_dev_kind(t.dev), FTL_DEV_FILE);
	cr_assert_eq(ftl_dev_size(t.dev), 64 << 20);
	cr_assert_eq(ftl_dev_block_size(t.dev), 4096);
	cr_assert_str_eq(ftl_dev_path(t.dev), t.img);
	cr_assert_eq(stat(t.img, &st), 0);
	cr_assert_eq(st.st_size, 64 << 20);
	cr_assert_lt(st.st_blocks * 512, 1 << 20, "created image is not sparse");
}

Test(ftl_dev, file_create_rejects_bad_size)
{
	cr_expect_eq(ftl_dev_open(t.img, FTL_DEV_CREATE, 0, &t.dev), -EINVAL);
	cr_expect_eq(ftl_dev_open(t.img, FTL_DEV_CREATE, 4097, &t.dev), -EINVAL);
	cr_expect_eq(access(t.img, F_OK), -1, "a refused create left a file behind");
}

Test(ftl_dev, file_round_trip_reaches_the_file)
{
	uint8_t in[8 * BS], out[8 * BS];
	int fd;

	cr_assert_eq(ftl_dev_open(t.img, FTL_DEV_CREATE, 16 << 20, &t.dev), 0);
	fill(in, sizeof(in), 60);
	cr_assert_eq(ftl_dev_write(t.dev, in, sizeof(in), 3 * BS), 0);
	cr_assert_eq(ftl_dev_flush(t.dev), 0);
	cr_assert_eq(ftl_dev_read(t.dev, out, sizeof(out), 3 * BS), 0);
	cr_assert_arr_eq(in, out, sizeof(in));
	/* The bytes are in the image where they belong. */
	fd = open(t.img, O_RDONLY);
	cr_assert_geq(fd, 0);
	memset(out, 0, sizeof(out));
	cr_assert_eq(pread(fd, out, sizeof(out), 3 * BS), (ssize_t)sizeof(out));
	close(fd);
	cr_assert_arr_eq(in, out, sizeof(in));
	/* And survive close and reopen. */
	ftl_dev_close(t.dev);
	t.dev = NULL;
	cr_assert_eq(ftl_dev_open(t.img, 0, 0, &t.dev), 0);
	cr_assert_eq(ftl_dev_size(t.dev), 16 << 20);
	cr_assert_eq(ftl_dev_read(t.dev, out, sizeof(out), 3 * BS), 0);
	cr_assert_arr_eq(in, out, sizeof(in));
}

Test(ftl_dev, file_trim_punches_a_hole)
{
	enum { LEN = 1 << 20 };
	uint8_t *in = malloc(LEN), *out = malloc(LEN);
	struct stat before, after;

	cr_assert(in && out);
	cr_assert_eq(ftl_dev_open(t.img, FTL_DEV_CREATE, 8 << 20, &t.dev), 0);
	fill(in, LEN, 61);
	cr_assert_eq(ftl_dev_write(t.dev, in, LEN, 0), 0);
	cr_assert_eq(ftl_dev_flush(t.dev), 0);
	cr_assert_eq(stat(t.img, &before), 0);
	cr_assert_geq(before.st_blocks * 512, LEN);

	cr_assert_eq(ftl_dev_trim(t.dev, 0, LEN / 2), 0);
	cr_assert_eq(stat(t.img, &after), 0);
	cr_assert_leq(after.st_blocks * 512, before.st_blocks * 512 - LEN / 2,
	              "st_blocks %lld -> %lld", (long long)before.st_blocks,
	              (long long)after.st_blocks);
	cr_assert_eq(after.st_size, before.st_size, "TRIM changed the image size");
	cr_assert_eq(ftl_dev_read(t.dev, out, LEN, 0), 0);
	cr_assert(is_zero(out, LEN / 2));
	cr_assert_arr_eq(out + LEN / 2, in + LEN / 2, LEN / 2);
	free(in);
	free(out);
}

/* Whether the filesystem holding PATH's folder takes O_DIRECT: what the backend should find. */
static bool dir_takes_o_direct(const char *dir)
{
	char probe[128];
	snprintf(probe, sizeof(probe), "%s/probe", dir);
	int fd = open(probe, O_RDWR | O_CREAT | O_DIRECT, 0600);
	if (fd >= 0)
		close(fd);
	unlink(probe);
	return fd >= 0;
}

/* Writes and reads through buffers at odd addresses and a read_small across a block boundary:
 * an O_DIRECT backend must bounce them, a buffered one pass them straight. */
static void check_unaligned_round_trip(struct ftl_dev *dev, const char *img)
{
	enum { LEN = 3 * BS };
	uint8_t *raw_in = malloc(LEN + 1), *raw_out = malloc(LEN + 1), small[100], file[LEN];
	cr_assert(raw_in && raw_out);
	uint8_t *in = raw_in + 1, *out = raw_out + 1; /* never 2-byte aligned */

	fill(in, LEN, 62);
	cr_assert_eq(ftl_dev_write(dev, in, LEN, 5 * BS), 0);
	cr_assert_eq(ftl_dev_flush(dev), 0);
	memset(out, 0, LEN);
	cr_assert_eq(ftl_dev_read(dev, out, LEN, 5 * BS), 0);
	cr_assert_arr_eq(in, out, LEN);
	cr_assert_eq(ftl_dev_read_small(dev, small, sizeof(small), 5 * BS + BS - 37), 0);
	cr_assert_arr_eq(small, in + BS - 37, sizeof(small));
	/* A buffered reader of the image sees the bytes (the kernel keeps O_DIRECT coherent). */
	int fd = open(img, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, file, LEN, 5 * BS), (ssize_t)LEN);
	close(fd);
	cr_assert_arr_eq(in, file, LEN);
	free(raw_in);
	free(raw_out);
}

Test(ftl_dev, file_is_direct_by_default_and_bounces_unaligned_callers)
{
	struct ftl_dev_identity id;

	cr_assert_eq(ftl_dev_open(t.img, FTL_DEV_CREATE, 16 << 20, &t.dev), 0);
	cr_assert_eq(ftl_dev_identify(t.dev, &id), 0);
	if (dir_takes_o_direct(t.dir)) {
		cr_expect_str_eq(id.cache, "direct");
		cr_expect_str_eq(id.cache_reason, "");
	} else {
		cr_expect_str_eq(id.cache, "buffered");
		cr_expect_not_null(strstr(id.cache_reason, "O_DIRECT refused"), "%s",
		                   id.cache_reason);
	}
	check_unaligned_round_trip(t.dev, t.img);
}

Test(ftl_dev, file_buffered_when_asked)
{
	struct ftl_dev_identity id;

	cr_assert_eq(ftl_dev_open(t.img, FTL_DEV_CREATE | FTL_DEV_BUFFERED, 16 << 20, &t.dev), 0);
	cr_assert_eq(ftl_dev_identify(t.dev, &id), 0);
	cr_expect_str_eq(id.cache, "buffered");
	cr_expect_str_eq(id.cache_reason, "cache=buffered");
	check_unaligned_round_trip(t.dev, t.img);
	/* Reopened without the flag, the same image goes direct (where the host allows). */
	ftl_dev_close(t.dev);
	t.dev = NULL;
	cr_assert_eq(ftl_dev_open(t.img, 0, 0, &t.dev), 0);
	cr_assert_eq(ftl_dev_identify(t.dev, &id), 0);
	cr_expect_str_eq(id.cache, dir_takes_o_direct(t.dir) ? "direct" : "buffered");
}

/* tmpfs refused O_DIRECT before Linux 6.6 and takes it since: either way the image works and
 * the identity says which mode it got. */
Test(ftl_dev, file_on_tmpfs_works_in_whatever_mode_it_allows)
{
	char dir[64] = "/dev/shm/pstor-test-dev-XXXXXX", img[96];
	struct ftl_dev_identity id;
	struct ftl_dev *dev = NULL;

	if (!mkdtemp(dir))
		cr_skip_test("no /dev/shm");
	snprintf(img, sizeof(img), "%s/img", dir);
	bool direct = dir_takes_o_direct(dir);
	int rc = ftl_dev_open(img, FTL_DEV_CREATE, 8 << 20, &dev);
	if (rc == 0) {
		cr_expect_eq(ftl_dev_identify(dev, &id), 0);
		cr_expect_str_eq(id.cache, direct ? "direct" : "buffered");
		check_unaligned_round_trip(dev, img);
		ftl_dev_close(dev);
	}
	unlink(img);
	rmdir(dir);
	cr_assert_eq(rc, 0);
}

Test(ftl_dev, file_second_open_is_busy)
{
	struct ftl_dev *second = NULL;

	cr_assert_eq(ftl_dev_open(t.img, FTL_DEV_CREATE, 1 << 20, &t.dev), 0);
	cr_expect_eq(ftl_dev_open(t.img, 0, 0, &second), -EBUSY);
	cr_expect_eq(ftl_dev_open(t.img, FTL_DEV_RDONLY, 0, &second), -EBUSY);
	cr_expect_null(second);
	/* Closing releases the lock. */
	ftl_dev_close(t.dev);
	t.dev = NULL;
	cr_assert_eq(ftl_dev_open(t.img, 0, 0, &second), 0);
	ftl_dev_close(second);
}

Test(ftl_dev, file_read_only_refuses_writes_and_shares_with_readers)
{
	struct ftl_dev *ro2 = NULL, *rw = NULL;
	uint8_t buf[BS];

	cr_assert_eq(ftl_dev_open(t.img, FTL_DEV_CREATE, 1 << 20, &t.dev), 0);
	ftl_dev_close(t.dev);
	t.dev = NULL;
	cr_assert_eq(ftl_dev_open(t.img, FTL_DEV_RDONLY, 0, &t.dev), 0);
	fill(buf, BS, 62);
	cr_expect_eq(ftl_dev_write(t.dev, buf, BS, 0), -EROFS);
	cr_expect_eq(ftl_dev_trim(t.dev, 0, BS), -EROFS);
	cr_expect_eq(ftl_dev_read(t.dev, buf, BS, 0), 0);
	cr_expect(is_zero(buf, BS));
	cr_expect_eq(ftl_dev_open(t.img, FTL_DEV_RDONLY, 0, &ro2), 0);
	cr_expect_eq(ftl_dev_open(t.img, 0, 0, &rw), -EBUSY);
	ftl_dev_close(ro2);
	ftl_dev_close(rw);
}

Test(ftl_dev, file_identify_and_no_faults)
{
	struct ftl_dev_identity id;
	struct ftl_dev_smart smart;

	cr_assert_eq(ftl_dev_open(t.img, FTL_DEV_CREATE, 1 << 20, &t.dev), 0);
	cr_assert_eq(ftl_dev_identify(t.dev, &id), 0);
	cr_expect_str_eq(id.model, "pstorfs image file");
	cr_expect_neq(id.serial[0], '\0');
	cr_expect_eq(id.lba_size, 4096);
	cr_expect_eq(id.capacity_bytes, 1 << 20);
	cr_expect_eq(ftl_dev_smart(t.dev, &smart), -EOPNOTSUPP);
	cr_expect_eq(ftl_dev_mem_inject(t.dev, FTL_FAULT_READ_EIO, 0, BS, 1), -EOPNOTSUPP);
	cr_expect_eq(ftl_dev_mem_power_cut(t.dev, false), -EOPNOTSUPP);
	cr_expect_eq(ftl_dev_mem_flip_bit(t.dev, 0, 0), -EOPNOTSUPP);
	cr_expect_eq(ftl_dev_mem_trimmed_bytes(t.dev), 0);
}

Test(ftl_dev, open_directory_is_einval_and_missing_is_enoent)
{
	char missing[128];

	snprintf(missing, sizeof(missing), "%s/nope", t.dir);
	cr_expect_eq(ftl_dev_open(t.dir, 0, 0, &t.dev), -EINVAL);
	cr_expect_eq(ftl_dev_open(t.dir, FTL_DEV_RDONLY, 0, &t.dev), -EINVAL);
	cr_expect_eq(ftl_dev_open(missing, 0, 0, &t.dev), -ENOENT);
	cr_expect_eq(ftl_dev_open(missing, FTL_DEV_RDONLY, 0, &t.dev), -ENOENT);
	cr_expect_eq(ftl_dev_open("/dev/null", 0, 0, &t.dev), -EINVAL); /* character device */
	cr_expect_eq(ftl_dev_open(t.img, 0x80, 0, &t.dev), -EINVAL);    /* unknown flag */
	cr_expect_null(t.dev);
}

/* ------------------------------------------------------------------------------------------ */
/* Block device (loop)                                                                          */
/* ------------------------------------------------------------------------------------------ */

/* Makes a SIZE-byte image and attaches it to a free loop device, or skips the test. */
static void setup_loop(uint64_t size)
{
	char cmd[160];
	FILE *p;
	int fd;

	fd = open(t.img, O_RDWR | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	close(fd);
	snprintf(cmd, sizeof(cmd), "losetup -f --show %s 2>/dev/null", t.img);
	p = popen(cmd, "r");
	if (!p)
		cr_skip_test("cannot run losetup");
	if (!fgets(t.loop, sizeof(t.loop), p))
		t.loop[0] = '\0';
	if (pclose(p) != 0 || strncmp(t.loop, "/dev/loop", 9) != 0) {
		t.loop[0] = '\0';
		cr_skip_test("losetup -f --show failed: no loop devices here");
	}
	t.loop[strcspn(t.loop, "\n")] = '\0';
}

Test(ftl_dev, block_loop_direct_io_with_unaligned_buffers)
{
	enum { LEN = 64 * 1024 };
	uint8_t *in = malloc(LEN + 1), *out = malloc(LEN + 1);
	uint8_t *uin = in + 1, *uout = out + 1; /* deliberately misaligned for O_DIRECT */
	struct ftl_dev_identity id;
	uint32_t bs;
	int fd;

	cr_assert(in && out);
	setup_loop(32 << 20);
	cr_assert_eq(ftl_dev_open(t.loop, 0, 0, &t.dev), 0);
	cr_assert_eq(ftl_dev_kind(t.dev), FTL_DEV_BLOCK);
	cr_assert_eq(ftl_dev_size(t.dev), 32 << 20);
	bs = ftl_dev_block_size(t.dev);
	cr_assert(bs >= 512 && (bs & (bs - 1)) == 0, "block size %u", bs);

	fill(uin, LEN, 70);
	cr_assert_eq(ftl_dev_write(t.dev, uin, LEN, 1 << 20), 0);
	cr_assert_eq(ftl_dev_flush(t.dev), 0);
	cr_assert_eq(ftl_dev_read(t.dev, uout, LEN, 1 << 20), 0);
	cr_assert_arr_eq(uin, uout, LEN);
	/* O_DIRECT wrote through to the backing image. */
	fd = open(t.img, O_RDONLY);
	cr_assert_geq(fd, 0);
	memset(out, 0, LEN);
	cr_assert_eq(pread(fd, out, LEN, 1 << 20), LEN);
	close(fd);
	cr_assert_arr_eq(uin, out, LEN);

	cr_assert_eq(ftl_dev_identify(t.dev, &id), 0);
	cr_expect_str_eq(id.model, "block device");
	cr_expect_eq(id.lba_size, bs);
	cr_expect_eq(id.capacity_bytes, 32 << 20);
	cr_expect_eq(id.nsid, 0);
	free(in);
	free(out);
}

Test(ftl_dev, block_loop_discard_zeroes)
{
	enum { LEN = 256 * 1024 };
	uint8_t *in = aligned_alloc(4096, LEN), *out = aligned_alloc(4096, LEN);
	int err;

	cr_assert(in && out);
	setup_loop(32 << 20);
	cr_assert_eq(ftl_dev_open(t.loop, 0, 0, &t.dev), 0);
	fill(in, LEN, 71);
	cr_assert_eq(ftl_dev_write(t.dev, in, LEN, 0), 0);
	cr_assert_eq(ftl_dev_flush(t.dev), 0);
	err = ftl_dev_trim(t.dev, 0, LEN / 2);
	if (err == -EOPNOTSUPP)
		cr_skip_test("loop device refuses discard here");
	cr_assert_eq(err, 0);
	cr_assert_eq(ftl_dev_read(t.dev, out, LEN, 0), 0);
	cr_assert(is_zero(out, LEN / 2), "discarded range of a loop device reads back data");
	cr_assert_arr_eq(out + LEN / 2, in + LEN / 2, LEN / 2);
	free(in);
	free(out);
}

Test(ftl_dev, block_second_open_is_busy)
{
	struct ftl_dev *second = NULL;

	setup_loop(8 << 20);
	cr_assert_eq(ftl_dev_open(t.loop, 0, 0, &t.dev), 0);
	cr_expect_eq(ftl_dev_open(t.loop, 0, 0, &second), -EBUSY);
	cr_expect_eq(ftl_dev_open(t.loop, FTL_DEV_RDONLY, 0, &second), -EBUSY);
	cr_expect_null(second);
	cr_expect_eq(ftl_dev_open(t.loop, FTL_DEV_CREATE, 1 << 20, &second), -EBUSY);
	ftl_dev_close(second);
}

Test(ftl_dev, power_cut_after_n_writes_kills_the_device_at_that_write)
{
	struct ftl_dev *dev;
	uint8_t a[8192], b[8192], got[8192];
	memset(a, 0xaa, sizeof(a));
	memset(b, 0xbb, sizeof(b));
	cr_assert_eq(ftl_dev_open_mem(1 << 20, 4096, &dev), 0);
	cr_assert_eq(ftl_dev_write(dev, a, sizeof(a), 0), 0);
	cr_assert_eq(ftl_dev_flush(dev), 0);
	cr_assert_eq(ftl_dev_mem_power_cut_after(dev, 1, true), 0);
	cr_assert_eq(ftl_dev_write(dev, b, 4096, 0), 0); /* lands, unflushed */
	cr_assert(!ftl_dev_mem_is_dead(dev));
	cr_assert_eq(ftl_dev_write(dev, b, sizeof(b), 65536), -EIO); /* the cut: torn */
	cr_assert(ftl_dev_mem_is_dead(dev));
	cr_assert_eq(ftl_dev_write(dev, b, 4096, 8192), -EIO);
	cr_assert_eq(ftl_dev_flush(dev), -EIO);
	cr_assert_eq(ftl_dev_trim(dev, 0, 4096), -EIO);
	/* The unflushed write before the cut is gone, the flushed data stays, and the torn
	 * write kept exactly its first half. */
	cr_assert_eq(ftl_dev_read(dev, got, sizeof(got), 0), 0);
	cr_assert_eq(memcmp(got, a, sizeof(a)), 0);
	cr_assert_eq(ftl_dev_read(dev, got, sizeof(got), 65536), 0);
	cr_assert_eq(memcmp(got, b, 4096), 0);
	for (size_t i = 4096; i < sizeof(got); i++)
		cr_assert_eq(got[i], 0, "byte %zu of the lost half", i);
	cr_assert_eq(ftl_dev_mem_revive(dev), 0);
	cr_assert_eq(ftl_dev_write(dev, b, 4096, 8192), 0);
	ftl_dev_close(dev);
}

Test(ftl_dev, read_small_reads_any_offset_and_checks_bounds)
{
	struct ftl_dev *dev;
	uint8_t blk[8192], got[100];
	for (size_t i = 0; i < sizeof(blk); i++)
		blk[i] = (uint8_t)(i * 7 + 3);
	cr_assert_eq(ftl_dev_open_mem(1 << 20, 4096, &dev), 0);
	cr_assert_eq(ftl_dev_write(dev, blk, sizeof(blk), 4096), 0);
	/* Across the block boundary, at an odd offset. */
	cr_assert_eq(ftl_dev_read_small(dev, got, sizeof(got), 4096 + 4050), 0);
	cr_assert_eq(memcmp(got, blk + 4050, sizeof(got)), 0);
	cr_assert_eq(ftl_dev_read_small(dev, got, 8, (1 << 20) - 8), 0);
	cr_assert_eq(ftl_dev_read_small(dev, got, 9, (1 << 20) - 8), -EINVAL);
	cr_assert_eq(ftl_dev_read_small(dev, got, 0, 0), -EINVAL);
	/* Injected read errors apply to small reads too. */
	cr_assert_eq(ftl_dev_mem_inject(dev, FTL_FAULT_READ_EIO, 4096, 4096, 1), 0);
	cr_assert_eq(ftl_dev_read_small(dev, got, 8, 4100), -EIO);
	cr_assert_eq(ftl_dev_read_small(dev, got, 8, 4100), 0);
	ftl_dev_close(dev);
}
