/* tests/tools/pstor-sbtool.c - prints or edits the two FTL superblock copies of an image, so
 * integration tests can make namespaces this build must refuse (a newer format version, unknown
 * incompatible features). A test tool: it writes exactly what it is told, and nothing else.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ftl.h"
#include "ftl_format.h"

static const uint64_t sb_offs[2] = {FTL_SB_OFFSET_A, FTL_SB_OFFSET_B};

static uint32_t sb_crc(const struct ftl_sb_disk *d)
{
	struct ftl_sb_disk tmp = *d;
	tmp.crc = 0;
	return ftl_crc32c(0, &tmp, sizeof(tmp));
}

static void usage(FILE *f)
{
	fprintf(f, "usage: pstor-sbtool IMAGE                     print both superblock copies\n"
	           "       pstor-sbtool IMAGE set FIELD VALUE     set FIELD in both copies and\n"
	           "                                              recompute their CRC-32C\n"
	           "FIELD: version, incompat_features, device_size, segment_count\n");
}

/* Points *FIELD at the member named NAME; WIDTH gets its size in bytes. */
static int field_of(struct ftl_sb_disk *d, const char *name, void **field, size_t *width)
{
	if (!strcmp(name, "version")) {
		*field = &d->version;
		*width = sizeof(d->version);
	} else if (!strcmp(name, "incompat_features")) {
		*field = &d->incompat_features;
		*width = sizeof(d->incompat_features);
	} else if (!strcmp(name, "device_size")) {
		*field = &d->device_size;
		*width = sizeof(d->device_size);
	} else if (!strcmp(name, "segment_count")) {
		*field = &d->segment_count;
		*width = sizeof(d->segment_count);
	} else {
		return -EINVAL;
	}
	return 0;
}

static void print_copy(int i, const struct ftl_sb_disk *d)
{
	printf("copy %c: magic %s version %" PRIu32 " crc %s incompat %#" PRIx32
	       " device_size %" PRIu64 " segments %" PRIu32 " x %" PRIu64 "\n",
	       'A' + i, d->magic == FTL_SB_MAGIC ? "ok" : "BAD", d->version,
	       sb_crc(d) == d->crc ? "ok" : "BAD", d->incompat_features, d->device_size,
	       d->segment_count, d->segment_size);
}

int main(int argc, char **argv)
{
	struct ftl_sb_disk d[2];
	bool set = argc == 5 && !strcmp(argv[2], "set");
	unsigned long long val = 0;
	int fd, rc = 1;

	if (argc != 2 && !set) {
		usage(stderr);
		return 2;
	}
	if (set) {
		char *end;
		errno = 0;
		val = strtoull(argv[4], &end, 0);
		if (errno || end == argv[4] || *end) {
			fprintf(stderr, "pstor-sbtool: bad value '%s'\n", argv[4]);
			return 2;
		}
	}
	fd = open(argv[1], set ? O_RDWR : O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "pstor-sbtool: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (int i = 0; i < 2; i++) {
		if (pread(fd, &d[i], sizeof(d[i]), (off_t)sb_offs[i]) != (ssize_t)sizeof(d[i])) {
			fprintf(stderr, "pstor-sbtool: %s: cannot read superblock copy %c\n",
			        argv[1], 'A' + i);
			goto out_close;
		}
		if (!set)
			print_copy(i, &d[i]);
	}
	if (!set) {
		rc = 0;
		goto out_close;
	}
	for (int i = 0; i < 2; i++) {
		void *field;
		size_t width;
		if (d[i].magic != FTL_SB_MAGIC || sb_crc(&d[i]) != d[i].crc) {
			fprintf(stderr, "pstor-sbtool: %s: superblock copy %c is not valid\n",
			        argv[1], 'A' + i);
			goto out_close;
		}
		if (field_of(&d[i], argv[3], &field, &width)) {
			usage(stderr);
			goto out_close;
		}
		if (width == 4 && val > UINT32_MAX) {
			fprintf(stderr, "pstor-sbtool: %s does not fit in 32 bits\n", argv[4]);
			goto out_close;
		}
		if (width == 4) {
			uint32_t v = (uint32_t)val;
			memcpy(field, &v, sizeof(v));
		} else {
			uint64_t v = val;
			memcpy(field, &v, sizeof(v));
		}
		d[i].crc = sb_crc(&d[i]);
		if (pwrite(fd, &d[i], sizeof(d[i]), (off_t)sb_offs[i]) != (ssize_t)sizeof(d[i])) {
			fprintf(stderr, "pstor-sbtool: %s: cannot write copy %c: %s\n", argv[1],
			        'A' + i, strerror(errno));
			goto out_close;
		}
	}
	if (fsync(fd)) {
		fprintf(stderr, "pstor-sbtool: %s: fsync: %s\n", argv[1], strerror(errno));
		goto out_close;
	}
	rc = 0;
out_close:
	close(fd);
	return rc;
}
