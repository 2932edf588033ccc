/* flash/dev/fault/ftl_dev_fault.h - fault injection into the memory device (FTL_DEV_MEM):
 * failed reads and writes, power cuts (optionally tearing a write), bit flips. For tests, fuzz
 * targets, benchmarks and tools only: the FTL and the modules above it never include it, and
 * CMake gives its folder only to targets that link pstor_flash_dev_fault.
 */
#ifndef PSTOR_FTL_DEV_FAULT_H
#define PSTOR_FTL_DEV_FAULT_H

#include "ftl_dev.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Fault injection, only on FTL_DEV_MEM devices (-EOPNOTSUPP elsewhere).
 * The memory device keeps two images: what is durable and what is volatile (written, not yet
 * flushed). A read sees the volatile image; ftl_dev_flush() makes it durable. */
enum ftl_fault {
	FTL_FAULT_READ_EIO,  /* the next `count` reads overlapping [off, off+len) fail with -EIO */
	FTL_FAULT_WRITE_EIO, /* the next `count` writes overlapping the range fail with -EIO */
};
int ftl_dev_mem_inject(struct ftl_dev *dev, enum ftl_fault fault, uint64_t off, uint64_t len,
                       uint32_t count);
/* Power cut: every write not yet flushed is dropped. With `tear_last`, the most recent unflushed
 * write survives in part: its first half (rounded to blocks) lands, the rest is lost. */
int ftl_dev_mem_power_cut(struct ftl_dev *dev, bool tear_last);
/* Power cut at a chosen point: the device dies during the write that comes after NWRITES more
 * writes (0 = the next one). That write is lost (with TEAR its first half, in whole blocks,
 * lands), every unflushed write is dropped, and from then on writes, flushes and trims fail
 * with -EIO (reads still work) until ftl_dev_mem_revive(): the machine is off. */
int ftl_dev_mem_power_cut_after(struct ftl_dev *dev, uint64_t nwrites, bool tear);
bool ftl_dev_mem_is_dead(const struct ftl_dev *dev);
int ftl_dev_mem_revive(struct ftl_dev *dev);
/* Flips bit BIT (0-7) of the byte at OFF in both images (bit rot). */
int ftl_dev_mem_flip_bit(struct ftl_dev *dev, uint64_t off, unsigned bit);
/* Bytes currently trimmed (holes) in the memory device; for tests that TRIM reached it. */
uint64_t ftl_dev_mem_trimmed_bytes(const struct ftl_dev *dev);

#ifdef __cplusplus
}
#endif
#endif
