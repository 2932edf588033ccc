/* tests/tools/pstor-crash-writer.c - the writer and checker of the kill -9 crash test
 * (tests/integration/test_crash_kill.sh): writes self-describing 4 KiB blocks to volume files
 * with fdatasync, fsync batches, O_DSYNC and no sync at all, journals what each sync acknowledged
 * in a file outside the mount, and after a crash checks that nothing acknowledged was lost and
 * nothing reads as garbage. It knows nothing of pstorfs's internals: only POSIX file I/O.
 *
 *   pstor-crash-writer fill   DIR JOURNAL [--volumes N] [--blocks N]
 *   pstor-crash-writer run    DIR JOURNAL [--volumes N] [--blocks N] [--threads N] [--seconds N]
 *   pstor-crash-writer verify DIR JOURNAL [--volumes N] [--blocks N] [--snapshot VOL:PATH]...
 *
 * DIR holds the volume files cw0, cw1, ... (made beforehand, at least --blocks * 4 KiB each).
 * fill writes every block once and syncs (so live data fills the namespace and every block has
 * an acknowledged version); run writes until killed (or for --seconds).
 *
 * The journal is a sequence of 32-byte records, appended with O_APPEND by all threads:
 *   INTENT (vol, block, gen, kind): written before the block is written (not synced: the test
 *           kills processes, not the machine, so the host page cache keeps it);
 *   ACK    (vol, block, gen, kind): written after the sync that covers the write returned, then
 *           the journal is fsynced.
 * Generations are epoch << 32 | per-thread counter; each run takes the next epoch after every
 * epoch in the journal, and each block is written by one thread only, so a block's generations
 * only grow. Verify's rule, per block: the content must be exactly what one INTENT of that block
 * wrote, with a generation >= the block's last ACK (zeros are also fine if nothing was acked).
 * Anything else is LOST (a valid older version or zeros where an ack promised more) or GARBAGE
 * (content that no write of this block produced: bad magic, bad crc, wrong volume/block
 * numbers, a payload that does not match its header, a generation never written there).
 *
 * Exit status: 0 ok; 1 loss or garbage found (verify), or a read-back mismatch while writing
 * (run); 2 usage; 3 an I/O error (run stops at the first one: the daemon being killed is one).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLK         4096u
#define MAX_VOLS    8u
#define MAX_THREADS 8u
#define N_DUP       16u /* whole-block duplicate templates: dedupe hits across blocks and volumes */
#define N_PAT       8u  /* repeating-pattern blocks: pattern removal, inline and table patterns */

#define MAGIC_DATA 0x42574350u /* "PCWB" */
#define MAGIC_DUP  0x44574350u /* "PCWD" */
#define J_INTENT   0x494a4350u /* "PCJI" */
#define J_ACK      0x414a4350u /* "PCJA" */

enum kind { K_DATA = 1, K_DUP = 2, K_PAT = 3, K_ZERO = 4 };

/* Sync modes, one per thread (thread t uses mode t % 4). */
enum mode { M_FDATASYNC, M_FSYNC_BATCH, M_NOSYNC, M_ODSYNC };
static const char *const mode_names[] = {"fdatasync-each", "fsync-batch", "never-synced",
                                         "O_DSYNC"};

struct blk_hdr { /* little-endian on every machine this runs on (x86-64, arm64) */
	uint32_t magic;
	uint32_t crc; /* crc32 of bytes 8..4095 */
	uint32_t vol;
	uint32_t block;
	uint64_t gen;
	uint32_t rand_len; /* bytes of random payload after the header; the rest is text */
	uint32_t zero;
};
_Static_assert(sizeof(struct blk_hdr) == 32, "block header is 32 bytes");

struct jrec {
	uint32_t magic;
	uint32_t vol;
	uint32_t block;
	uint32_t kind; /* enum kind << 8 | template (dup or pattern index) */
	uint64_t gen;
	uint32_t zero;
	uint32_t crc; /* crc32 of the first 28 bytes */
};
_Static_assert(sizeof(struct jrec) == 32, "journal record is 32 bytes");

/* ---- crc32 (IEEE, as zlib), splitmix64 ------------------------------------------------------ */

static uint32_t crc_table[256];

static void crc32_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32_buf(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t c = 0xFFFFFFFFu;

	while (len--)
		c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

static uint64_t mix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t seed_of(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t s = a * 0x100000001B3ull ^ b;
	mix64(&s);
	s ^= c;
	return mix64(&s);
}

/* ---- block contents: a pure function of (kind, template, vol, block, gen) ------------------- */

/* Random bytes, then text that names the block: LZ4/Zstd compress it, so mixed blocks exercise
 * the compression path while the random part keeps every block unique. */
static void fill_payload(uint8_t *b, size_t from, uint32_t rand_len, uint64_t seed,
                         const char *text)
{
	size_t i = from, tl = strlen(text);

	for (; i < from + rand_len; i += 8) {
		uint64_t r = mix64(&seed);
		memcpy(b + i, &r, BLK - i < 8 ? BLK - i : 8);
	}
	for (size_t k = 0; i < BLK; i++, k++)
		b[i] = (uint8_t)text[k % tl];
}

static void make_data(uint8_t *b, uint32_t vol, uint32_t block, uint64_t gen)
{
	/* A quarter to all of the payload random, by the block's own hash. */
	static const uint32_t rl[4] = {1024, 2048, 3072, BLK - 32};
	uint64_t seed = seed_of(vol, block, gen);
	struct blk_hdr h = {MAGIC_DATA, 0, vol, block, gen, rl[seed & 3], 0};
	char text[96];

	snprintf(text, sizeof(text),
	         "pstor-crash-writer vol %" PRIu32 " block %" PRIu32 " gen %" PRIx64 " | ", vol,
	         block, gen);
	fill_payload(b, sizeof(h), h.rand_len, seed, text);
	memcpy(b, &h, sizeof(h));
	h.crc = crc32_buf(b + 8, BLK - 8);
	memcpy(b, &h, sizeof(h));
}

static void make_dup(uint8_t *b, uint32_t t)
{
	struct blk_hdr h = {MAGIC_DUP, 0, UINT32_MAX, t, 0, 2048, 0};

	fill_payload(b, sizeof(h), h.rand_len, seed_of(0xD0D0, t, 0), "duplicate template | ");
	memcpy(b, &h, sizeof(h));
	h.crc = crc32_buf(b + 8, BLK - 8);
	memcpy(b, &h, sizeof(h));
}

/* Periods 1..7 are stored inline in the reference, 8..16 in the persisted pattern table. */
static void make_pat(uint8_t *b, uint32_t t)
{
	static const uint32_t period[N_PAT] = {3, 8, 9, 11, 12, 13, 15, 16};
	uint8_t pat[16];
	uint64_t s = seed_of(0xFA77, t, 0);

	for (uint32_t i = 0; i < 16; i++)
		pat[i] = (uint8_t)(mix64(&s) | 1); /* never all zero: that would be K_ZERO */
	for (uint32_t i = 0; i < BLK; i++)
		b[i] = pat[i % period[t]];
}

static void make_block(uint8_t *b, enum kind k, uint32_t t, uint32_t vol, uint32_t block,
                       uint64_t gen)
{
	switch (k) {
	case K_DATA:
		make_data(b, vol, block, gen);
		break;
	case K_DUP:
		make_dup(b, t);
		break;
	case K_PAT:
		make_pat(b, t);
		break;
	case K_ZERO:
		memset(b, 0, BLK);
		break;
	}
}

/* What a block read back holds. gen is set for K_DATA; kind 0 = garbage (why says why). */
struct seen {
	uint8_t kind, tmpl;
	uint64_t gen;
	const char *why;
};

static struct seen classify(const uint8_t *b, uint32_t vol, uint32_t block)
{
	static _Thread_local uint8_t want[BLK];
	struct seen s = {0, 0, 0, NULL};
	struct blk_hdr h;
	bool zero = true;

	for (uint32_t i = 0; i < BLK && zero; i++)
		zero = b[i] == 0;
	if (zero) {
		s.kind = K_ZERO;
		return s;
	}
	memcpy(&h, b, sizeof(h));
	if (h.magic == MAGIC_DATA || h.magic == MAGIC_DUP) {
		if (crc32_buf(b + 8, BLK - 8) != h.crc) {
			s.why = "bad crc";
			return s;
		}
		if (h.magic == MAGIC_DATA && (h.vol != vol || h.block != block)) {
			s.why = "wrong volume/block numbers";
			return s;
		}
		if (h.magic == MAGIC_DUP && h.block >= N_DUP) {
			s.why = "bad duplicate template number";
			return s;
		}
		/* The crc alone would pass a block written whole elsewhere; the rebuilt content
		 * must match byte for byte. */
		if (h.magic == MAGIC_DATA)
			make_data(want, vol, block, h.gen);
		else
			make_dup(want, h.block);
		if (memcmp(want, b, BLK)) {
			s.why = "payload does not match its header";
			return s;
		}
		s.kind = h.magic == MAGIC_DATA ? K_DATA : K_DUP;
		s.tmpl = h.magic == MAGIC_DUP ? (uint8_t)h.block : 0;
		s.gen = h.magic == MAGIC_DATA ? h.gen : 0;
		return s;
	}
	for (uint32_t t = 0; t < N_PAT; t++) {
		make_pat(want, t);
		if (!memcmp(want, b, BLK)) {
			s.kind = K_PAT;
			s.tmpl = (uint8_t)t;
			return s;
		}
	}
	s.why = "bad magic";
	return s;
}

/* ---- options ----------------------------------------------------------------------------- */

struct opts {
	const char *dir, *journal;
	uint32_t nvol, nblocks, nthreads, seconds;
	uint32_t nsnap;
	uint32_t snap_vol[16];
	const char *snap_path[16];
};

static void usage(void)
{
	fprintf(stderr, "usage: pstor-crash-writer fill   DIR JOURNAL [--volumes N] [--blocks N]\n"
	                "       pstor-crash-writer run    DIR JOURNAL [--volumes N] [--blocks N] "
	                "[--threads N] [--seconds N]\n"
	                "       pstor-crash-writer verify DIR JOURNAL [--volumes N] [--blocks N] "
	                "[--snapshot VOL:PATH]...\n");
	exit(2);
}

static uint32_t num_arg(const char *s, uint32_t lo, uint32_t hi)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < lo || v > hi)
		usage();
	return (uint32_t)v;
}

static void vol_path(char *buf, size_t len, const char *dir, uint32_t v)
{
	snprintf(buf, len, "%s/cw%" PRIu32, dir, v);
}

static _Thread_local const char *thread_name = "main";

static void die_errno(const char *what, const char *path)
{
	int e = errno;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(stderr, "pstor-crash-writer: [%lld.%03ld %s] %s %s: %s\n", (long long)ts.tv_sec,
	        ts.tv_nsec / 1000000, thread_name, what, path, strerror(e));
	exit(3);
}

/* ---- the journal ------------------------------------------------------------------------- */

static struct jrec jrec_make(uint32_t magic, uint32_t vol, uint32_t block, enum kind k, uint32_t t,
                             uint64_t gen)
{
	struct jrec r = {magic, vol, block, (uint32_t)k << 8 | t, gen, 0, 0};
	r.crc = crc32_buf(&r, offsetof(struct jrec, crc));
	return r;
}

/* Reads the whole journal; records with a bad crc (none, unless the file was damaged) are
 * dropped and counted. */
static struct jrec *journal_load(const char *path, size_t *n, size_t *bad)
{
	struct jrec *r = NULL;
	struct stat st;
	size_t got = 0, cnt;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*n = 0;
	*bad = 0;
	if (fd < 0) {
		if (errno == ENOENT)
			return NULL;
		die_errno("open", path);
	}
	if (fstat(fd, &st))
		die_errno("fstat", path);
	cnt = (size_t)st.st_size / sizeof(*r);
	if (cnt && !(r = malloc(cnt * sizeof(*r)))) {
		fprintf(stderr, "pstor-crash-writer: out of memory for %zu journal records\n", cnt);
		exit(3);
	}
	while (got < cnt * sizeof(*r)) {
		ssize_t k = read(fd, (char *)r + got, cnt * sizeof(*r) - got);
		if (k < 0)
			die_errno("read", path);
		if (k == 0)
			break;
		got += (size_t)k;
	}
	close(fd);
	cnt = got / sizeof(*r);
	for (size_t i = 0; i < cnt; i++) {
		if (crc32_buf(&r[i], offsetof(struct jrec, crc)) != r[i].crc ||
		    (r[i].magic != J_INTENT && r[i].magic != J_ACK)) {
			(*bad)++;
			continue;
		}
		r[(*n)++] = r[i];
	}
	return r;
}

/* ---- run --------------------------------------------------------------------------------- */

struct last { /* the last write of a block in this run, for rewrites and read-back checks */
	uint64_t gen;
	uint8_t kind, tmpl;
};

static struct {
	const struct opts *o;
	int jfd;
	uint64_t epoch;
	struct last *last; /* [vol * nblocks + block], each entry touched by its owner only */
	time_t deadline;
	atomic_uint_fast64_t writes, acks, syncs, readbacks;
} run_g;

struct thr {
	uint32_t id;
	enum mode mode;
	pthread_t tid;
};

static void jappend(const struct jrec *r, size_t n, bool sync)
{
	ssize_t k = write(run_g.jfd, r, n * sizeof(*r));

	if (k != (ssize_t)(n * sizeof(*r))) {
		if (k >= 0)
			errno = EIO;
		die_errno("append to", run_g.o->journal);
	}
	if (sync && fsync(run_g.jfd))
		die_errno("fsync", run_g.o->journal);
}

static void *writer_thread(void *arg)
{
	const struct thr *t = arg;
	const struct opts *o = run_g.o;
	const uint32_t T = o->nthreads;
	uint64_t rng = seed_of((uint64_t)time(NULL), t->id, run_g.epoch ^ (uint64_t)getpid());
	uint64_t seq = 0;
	int fd[MAX_VOLS];
	bool dirty[MAX_VOLS] = {false};
	static _Thread_local uint8_t buf[BLK], rbuf[BLK], want[BLK];
	struct jrec *batch = calloc(64, sizeof(*batch));
	size_t nbatch = 0, batch_target = 1;
	char path[4096];

	thread_name = mode_names[t->mode];
	if (!batch) {
		fprintf(stderr, "pstor-crash-writer: out of memory\n");
		exit(3);
	}
	for (uint32_t v = 0; v < o->nvol; v++) {
		vol_path(path, sizeof(path), o->dir, v);
		fd[v] = open(path, O_RDWR | O_CLOEXEC | (t->mode == M_ODSYNC ? O_DSYNC : 0));
		if (fd[v] < 0)
			die_errno("open", path);
	}
	while (!run_g.deadline || time(NULL) < run_g.deadline) {
		uint64_t r = mix64(&rng);
		uint32_t v = (uint32_t)(r % o->nvol);
		/* Block b of volume v belongs to thread (b + v) % T: a sequential run of up to 16
		 * of its blocks (stride T, so neighbours in one map page belong to other threads),
		 * or a single random one. */
		uint32_t first = (t->id + T - v % T) % T;
		uint32_t slots = (o->nblocks - first + T - 1) / T;
		uint32_t k0 = (uint32_t)((r >> 8) % slots);
		uint32_t run = (r >> 40) % 4 == 0 ? 1 + (uint32_t)((r >> 42) % 16) : 1;

		for (uint32_t i = 0; i < run && k0 + i < slots; i++) {
			uint32_t b = first + (k0 + i) * T;
			struct last *l = &run_g.last[(size_t)v * o->nblocks + b];
			uint32_t c = (uint32_t)(mix64(&rng) % 100);
			struct last w;
			ssize_t n;

			/* 6% of the ops read back a block this thread wrote in this run: it must
			 * hold exactly that write (it is the only writer of the block). */
			if (l->gen && c < 6) {
				n = pread(fd[v], rbuf, BLK, (off_t)b * BLK);
				if (n != (ssize_t)BLK) {
					if (n >= 0)
						errno = EIO;
					vol_path(path, sizeof(path), o->dir, v);
					die_errno("read back", path);
				}
				make_block(want, l->kind, l->tmpl, v, b, l->gen);
				if (memcmp(rbuf, want, BLK)) {
					struct seen s = classify(rbuf, v, b);
					fprintf(
					    stderr,
					    "pstor-crash-writer: READ-BACK MISMATCH vol %" PRIu32
					    " block %" PRIu32 ": wrote kind %u gen %" PRIx64
					    ", read kind %u gen %" PRIx64 " (%s)\n",
					    v, b, l->kind, l->gen, s.kind, s.gen,
					    s.why ? s.why : "valid");
					exit(1);
				}
				atomic_fetch_add(&run_g.readbacks, 1);
				continue;
			}
			if (l->gen && c < 11) {
				w = *l; /* rewrite the same content: a dedupe hit on its own chunk
				         */
			} else {
				w.gen = run_g.epoch << 32 | ++seq;
				w.tmpl = 0;
				if (c < 80) {
					w.kind = K_DATA;
				} else if (c < 91) {
					w.kind = K_DUP;
					w.tmpl = (uint8_t)(mix64(&rng) % N_DUP);
				} else if (c < 97) {
					w.kind = K_PAT;
					w.tmpl = (uint8_t)(mix64(&rng) % N_PAT);
				} else {
					w.kind = K_ZERO;
				}
			}
			make_block(buf, w.kind, w.tmpl, v, b, w.gen);
			struct jrec rec = jrec_make(J_INTENT, v, b, w.kind, w.tmpl, w.gen);
			jappend(&rec, 1, false);
			n = pwrite(fd[v], buf, BLK, (off_t)b * BLK);
			if (n != (ssize_t)BLK) {
				if (n >= 0)
					errno = EIO;
				vol_path(path, sizeof(path), o->dir, v);
				die_errno("write", path);
			}
			*l = w;
			atomic_fetch_add(&run_g.writes, 1);
			rec.magic = J_ACK;
			rec.crc = crc32_buf(&rec, offsetof(struct jrec, crc));

			switch (t->mode) {
			case M_FDATASYNC:
				if (fdatasync(fd[v])) {
					vol_path(path, sizeof(path), o->dir, v);
					die_errno("fdatasync", path);
				}
				atomic_fetch_add(&run_g.syncs, 1);
				__attribute__((fallthrough)); /* acknowledged now, as O_DSYNC */
			case M_ODSYNC:
				jappend(&rec, 1, true);
				atomic_fetch_add(&run_g.acks, 1);
				break;
			case M_FSYNC_BATCH:
				batch[nbatch++] = rec;
				dirty[v] = true;
				if (nbatch < batch_target)
					break;
				for (uint32_t u = 0; u < o->nvol; u++) {
					if (!dirty[u])
						continue;
					if (fsync(fd[u])) {
						vol_path(path, sizeof(path), o->dir, u);
						die_errno("fsync", path);
					}
					dirty[u] = false;
					atomic_fetch_add(&run_g.syncs, 1);
				}
				jappend(batch, nbatch, true);
				atomic_fetch_add(&run_g.acks, nbatch);
				nbatch = 0;
				batch_target = 1 + mix64(&rng) % 64;
				break;
			case M_NOSYNC:
				break;
			}
		}
	}
	for (uint32_t v = 0; v < o->nvol; v++)
		close(fd[v]);
	free(batch);
	return NULL;
}

/* Sets up run_g for fill and run: the next epoch, the journal, the volume sizes checked. */
static int run_setup(const struct opts *o)
{
	size_t n, bad;
	struct jrec *old = journal_load(o->journal, &n, &bad);
	uint64_t epoch = 0;
	char path[4096];

	/* Every generation ever written has its epoch in an INTENT record (written before the
	 * block), so the next epoch is above all of them. */
	for (size_t i = 0; i < n; i++)
		if (old[i].gen >> 32 > epoch)
			epoch = old[i].gen >> 32;
	free(old);
	run_g.o = o;
	run_g.epoch = epoch + 1;
	for (uint32_t v = 0; v < o->nvol; v++) {
		struct stat st;
		vol_path(path, sizeof(path), o->dir, v);
		if (stat(path, &st))
			die_errno("stat", path);
		if ((uint64_t)st.st_size < (uint64_t)o->nblocks * BLK) {
			fprintf(stderr, "pstor-crash-writer: %s is %jd bytes, need %" PRIu64 "\n",
			        path, (intmax_t)st.st_size, (uint64_t)o->nblocks * BLK);
			return 2;
		}
	}
	run_g.jfd = open(o->journal, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (run_g.jfd < 0)
		die_errno("open", o->journal);
	/* A batch of acks that crosses a page may be cut short by SIGKILL (the kernel checks
	 * for fatal signals between pages): drop the partial record, or every record appended
	 * after it would be misaligned. */
	struct stat st;
	if (fstat(run_g.jfd, &st))
		die_errno("fstat", o->journal);
	if (st.st_size % (off_t)sizeof(struct jrec) &&
	    ftruncate(run_g.jfd, st.st_size - st.st_size % (off_t)sizeof(struct jrec)))
		die_errno("truncate", o->journal);
	printf("epoch: %" PRIu64 "\n", run_g.epoch);
	return 0;
}

/* Every block of every volume once, 256 blocks per write(2), then fsync and the acks. */
static int cmd_fill(const struct opts *o)
{
	const uint32_t per = 256;
	uint8_t *buf = malloc((size_t)per * BLK);
	struct jrec *rec = malloc(per * sizeof(*rec));
	uint64_t seq = 0;
	char path[4096];
	int rc = run_setup(o);

	if (rc)
		return rc;
	if (!buf || !rec) {
		fprintf(stderr, "pstor-crash-writer: out of memory\n");
		return 3;
	}
	for (uint32_t v = 0; v < o->nvol; v++) {
		vol_path(path, sizeof(path), o->dir, v);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			die_errno("open", path);
		for (uint32_t b = 0; b < o->nblocks; b += per) {
			uint32_t k = o->nblocks - b < per ? o->nblocks - b : per;
			for (uint32_t i = 0; i < k; i++) {
				uint64_t gen = run_g.epoch << 32 | ++seq;
				make_data(buf + (size_t)i * BLK, v, b + i, gen);
				rec[i] = jrec_make(J_INTENT, v, b + i, K_DATA, 0, gen);
			}
			jappend(rec, k, false);
			ssize_t got = pwrite(fd, buf, (size_t)k * BLK, (off_t)b * BLK);
			if (got != (ssize_t)k * BLK) {
				if (got >= 0)
					errno = EIO;
				die_errno("write", path);
			}
		}
		if (fsync(fd))
			die_errno("fsync", path);
		close(fd);
	}
	/* Acknowledged only now that every volume was fsynced. */
	seq = 0;
	for (uint32_t v = 0; v < o->nvol; v++) {
		for (uint32_t b = 0; b < o->nblocks; b += per) {
			uint32_t k = o->nblocks - b < per ? o->nblocks - b : per;
			for (uint32_t i = 0; i < k; i++)
				rec[i] = jrec_make(J_ACK, v, b + i, K_DATA, 0,
				                   run_g.epoch << 32 | ++seq);
			jappend(rec, k, false);
		}
	}
	if (fsync(run_g.jfd))
		die_errno("fsync", o->journal);
	close(run_g.jfd);
	printf("writes: %" PRIu64 "\nacked_writes: %" PRIu64 "\n", seq, seq);
	free(rec);
	free(buf);
	return 0;
}

static int cmd_run(const struct opts *o)
{
	struct thr thr[MAX_THREADS];
	int rc = run_setup(o);

	if (rc)
		return rc;
	run_g.deadline = o->seconds ? time(NULL) + o->seconds : 0;
	run_g.last = calloc((size_t)o->nvol * o->nblocks, sizeof(*run_g.last));
	if (!run_g.last) {
		fprintf(stderr, "pstor-crash-writer: out of memory\n");
		return 3;
	}
	for (uint32_t i = 0; i < o->nthreads; i++)
		printf("thread.%" PRIu32 ": %s\n", i, mode_names[i % 4]);
	fflush(stdout);
	for (uint32_t i = 0; i < o->nthreads; i++) {
		thr[i].id = i;
		thr[i].mode = (enum mode)(i % 4);
		rc = pthread_create(&thr[i].tid, NULL, writer_thread, &thr[i]);
		if (rc) {
			fprintf(stderr, "pstor-crash-writer: pthread_create: %s\n", strerror(rc));
			return 3;
		}
	}
	for (uint32_t i = 0; i < o->nthreads; i++)
		pthread_join(thr[i].tid, NULL);
	printf("writes: %" PRIu64 "\nacked_writes: %" PRIu64 "\nsyncs: %" PRIu64
	       "\nreadbacks: %" PRIu64 "\n",
	       (uint64_t)run_g.writes, (uint64_t)run_g.acks, (uint64_t)run_g.syncs,
	       (uint64_t)run_g.readbacks);
	if (fsync(run_g.jfd))
		die_errno("fsync", o->journal);
	close(run_g.jfd);
	free(run_g.last);
	return 0;
}

/* ---- verify ------------------------------------------------------------------------------ */

struct vstate {
	uint64_t acked; /* the block's last acknowledged generation, 0 = none */
	struct seen seen;
	bool ok;    /* what it holds is allowed */
	bool known; /* some write of this block produced what it holds (at any generation) */
};

/* Reads PATH (nblocks blocks) and classifies each block into st[]; returns read errors. */
static uint64_t read_blocks(const char *path, uint32_t vol, uint32_t nblocks, struct vstate *st)
{
	const size_t chunk = 256 * BLK;
	uint8_t *buf = malloc(chunk);
	uint64_t errs = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (!buf) {
		fprintf(stderr, "pstor-crash-writer: out of memory\n");
		exit(3);
	}
	if (fd < 0) {
		fprintf(stderr, "pstor-crash-writer: open %s: %s\n", path, strerror(errno));
		free(buf);
		return nblocks;
	}
	for (uint32_t b = 0; b < nblocks;) {
		uint32_t n = nblocks - b < chunk / BLK ? nblocks - b : (uint32_t)(chunk / BLK);
		ssize_t k = pread(fd, buf, (size_t)n * BLK, (off_t)b * BLK);
		if (k != (ssize_t)n * BLK) {
			/* One block at a time, so one bad block does not hide its neighbours. */
			for (uint32_t i = 0; i < n; i++) {
				if (pread(fd, buf, BLK, (off_t)(b + i) * BLK) == (ssize_t)BLK) {
					st[b + i].seen = classify(buf, vol, b + i);
					continue;
				}
				if (errs++ < 10)
					fprintf(stderr,
					        "pstor-crash-writer: read %s block %" PRIu32
					        ": %s\n",
					        path, b + i, strerror(errno));
				st[b + i].seen.kind = 0;
				st[b + i].seen.why = "read error";
			}
		} else {
			for (uint32_t i = 0; i < n; i++)
				st[b + i].seen = classify(buf + (size_t)i * BLK, vol, b + i);
		}
		b += n;
	}
	close(fd);
	free(buf);
	return errs;
}

static bool matches(const struct jrec *r, const struct seen *s)
{
	uint32_t k = r->kind >> 8, t = r->kind & 0xFF;

	if (k != s->kind)
		return false;
	if (k == K_DATA)
		return r->gen == s->gen;
	if (k == K_DUP || k == K_PAT)
		return t == s->tmpl;
	return true;
}

static const char *kind_name(uint32_t k)
{
	static const char *const n[] = {"garbage", "data", "dup", "pattern", "zero"};
	return k < 5 ? n[k] : "?";
}

static int cmd_verify(const struct opts *o)
{
	const size_t nb = (size_t)o->nvol * o->nblocks;
	struct vstate *st = calloc(nb, sizeof(*st));
	size_t n, bad;
	struct jrec *j = journal_load(o->journal, &n, &bad);
	uint64_t acks = 0, intents = 0, epoch = 0, acks_last = 0, writes_last = 0;
	uint64_t lost = 0, garbage = 0, read_errs = 0, newer = 0, reported = 0;
	uint64_t by_kind[5] = {0}, acked_blocks = 0, snap_garbage = 0, snap_blocks = 0;
	char path[4096];

	if (!st) {
		fprintf(stderr, "pstor-crash-writer: out of memory\n");
		return 3;
	}
	for (size_t i = 0; i < n; i++) {
		if (j[i].vol >= o->nvol || j[i].block >= o->nblocks) {
			fprintf(stderr,
			        "pstor-crash-writer: journal record for vol %" PRIu32
			        " block %" PRIu32 " is outside --volumes/--blocks\n",
			        j[i].vol, j[i].block);
			return 2;
		}
		if (j[i].gen >> 32 > epoch)
			epoch = j[i].gen >> 32;
		if (j[i].magic == J_ACK) {
			struct vstate *s = &st[(size_t)j[i].vol * o->nblocks + j[i].block];
			acks++;
			if (j[i].gen > s->acked)
				s->acked = j[i].gen;
		} else {
			intents++;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (j[i].gen >> 32 != epoch)
			continue;
		if (j[i].magic == J_ACK)
			acks_last++;
		else
			writes_last++;
	}
	for (uint32_t v = 0; v < o->nvol; v++) {
		vol_path(path, sizeof(path), o->dir, v);
		read_errs += read_blocks(path, v, o->nblocks, st + (size_t)v * o->nblocks);
	}
	/* A block is fine when an INTENT at or after its last ack wrote exactly what it holds;
	 * zeros are fine where nothing was acked (never written, or not yet durable). */
	for (size_t b = 0; b < nb; b++)
		st[b].ok = st[b].seen.kind == K_ZERO && !st[b].acked;
	for (size_t i = 0; i < n; i++) {
		struct vstate *s = &st[(size_t)j[i].vol * o->nblocks + j[i].block];
		if (j[i].magic != J_INTENT || !matches(&j[i], &s->seen))
			continue;
		s->known = true;
		if (j[i].gen >= s->acked)
			s->ok = true;
	}
	for (size_t b = 0; b < nb; b++) {
		struct vstate *s = &st[b];
		by_kind[s->seen.kind]++;
		acked_blocks += s->acked != 0;
		if (s->seen.kind == K_DATA && s->acked && s->seen.gen > s->acked)
			newer++;
		if (s->ok)
			continue;
		/* Valid content that some write of this block produced, but older than the ack, or
		 * an acked block that cannot be read: a loss. Anything no write of this block
		 * produced: garbage. */
		bool known = s->known || s->seen.kind == K_ZERO ||
		             (s->acked && s->seen.why && !strcmp(s->seen.why, "read error"));
		if (known)
			lost++;
		else
			garbage++;
		if (reported++ < 20)
			fprintf(
			    stderr,
			    "pstor-crash-writer: %s: vol %zu block %zu reads %s%s%s gen %" PRIx64
			    ", last acked gen %" PRIx64 "\n",
			    known ? "LOST" : "GARBAGE", b / o->nblocks, b % o->nblocks,
			    kind_name(s->seen.kind), s->seen.why ? " - " : "",
			    s->seen.why ? s->seen.why : "", s->seen.gen, s->acked);
	}
	/* A snapshot is some earlier state of its volume: each block must be zeros or a write
	 * that was made to that block. */
	for (uint32_t k = 0; k < o->nsnap; k++) {
		uint32_t v = o->snap_vol[k];
		struct vstate *ss = calloc(o->nblocks, sizeof(*ss));
		if (!ss) {
			fprintf(stderr, "pstor-crash-writer: out of memory\n");
			return 3;
		}
		read_errs += read_blocks(o->snap_path[k], v, o->nblocks, ss);
		for (uint32_t b = 0; b < o->nblocks; b++)
			ss[b].ok = ss[b].seen.kind == K_ZERO;
		for (size_t i = 0; i < n; i++)
			if (j[i].magic == J_INTENT && j[i].vol == v && !ss[j[i].block].ok &&
			    matches(&j[i], &ss[j[i].block].seen))
				ss[j[i].block].ok = true;
		for (uint32_t b = 0; b < o->nblocks; b++) {
			snap_blocks++;
			if (ss[b].ok)
				continue;
			if (snap_garbage++ < 10)
				fprintf(stderr,
				        "pstor-crash-writer: GARBAGE in snapshot %s block %" PRIu32
				        ": %s%s%s\n",
				        o->snap_path[k], b, kind_name(ss[b].seen.kind),
				        ss[b].seen.why ? " - " : "",
				        ss[b].seen.why ? ss[b].seen.why : "");
		}
		free(ss);
	}
	printf("blocks_checked: %zu\n", nb);
	printf("blocks_data: %" PRIu64 "\nblocks_dup: %" PRIu64 "\nblocks_pattern: %" PRIu64
	       "\nblocks_zero: %" PRIu64 "\n",
	       by_kind[K_DATA], by_kind[K_DUP], by_kind[K_PAT], by_kind[K_ZERO]);
	printf("journal_writes: %" PRIu64 "\nacked_writes: %" PRIu64 "\nacked_blocks: %" PRIu64
	       "\n",
	       intents, acks, acked_blocks);
	printf("last_epoch: %" PRIu64 "\nlast_epoch_writes: %" PRIu64
	       "\nlast_epoch_acked_writes: %" PRIu64 "\n",
	       epoch, writes_last, acks_last);
	printf("unacked_newer_survived: %" PRIu64 "\n", newer);
	printf("journal_bad_records: %zu\n", bad);
	printf("snapshot_blocks_checked: %" PRIu64 "\nsnapshot_garbage: %" PRIu64 "\n", snap_blocks,
	       snap_garbage);
	printf("read_errors: %" PRIu64 "\n", read_errs);
	printf("lost_acked_writes: %" PRIu64 "\ngarbage_blocks: %" PRIu64 "\n", lost, garbage);
	free(j);
	free(st);
	return lost || garbage || snap_garbage || read_errs || bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct opts o = {.nvol = 3, .nblocks = 8192, .nthreads = 4};
	bool run, fill = false;

	if (argc < 4)
		usage();
	if (!strcmp(argv[1], "run"))
		run = true;
	else if (!strcmp(argv[1], "fill"))
		run = fill = true;
	else if (!strcmp(argv[1], "verify"))
		run = false;
	else
		usage();
	o.dir = argv[2];
	o.journal = argv[3];
	for (int i = 4; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc)
			usage();
		if (!strcmp(a, "--volumes")) {
			o.nvol = num_arg(argv[++i], 1, MAX_VOLS);
		} else if (!strcmp(a, "--blocks")) {
			o.nblocks = num_arg(argv[++i], 1, 1u << 24);
		} else if (!strcmp(a, "--threads") && run) {
			o.nthreads = num_arg(argv[++i], 1, MAX_THREADS);
		} else if (!strcmp(a, "--seconds") && run) {
			o.seconds = num_arg(argv[++i], 0, 1u << 30);
		} else if (!strcmp(a, "--snapshot") && !run && o.nsnap < 16) {
			const char *s = argv[++i], *colon = strchr(s, ':');
			if (!colon)
				usage();
			char num[16];
			size_t l = (size_t)(colon - s);
			if (l == 0 || l >= sizeof(num))
				usage();
			memcpy(num, s, l);
			num[l] = '\0';
			o.snap_vol[o.nsnap] = num_arg(num, 0, MAX_VOLS - 1);
			o.snap_path[o.nsnap++] = colon + 1;
		} else {
			usage();
		}
	}
	for (uint32_t k = 0; k < o.nsnap; k++)
		if (o.snap_vol[k] >= o.nvol)
			usage();
	crc32_init();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (fill)
		return cmd_fill(&o);
	return run ? cmd_run(&o) : cmd_verify(&o);
}
