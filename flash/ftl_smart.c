/* flash/ftl_smart.c - SMART / health of the namespace under the FTL: the NVMe log where the
 * device has one, else the same fields emulated from the FTL's own counters, and the printers
 * behind .pstorage/flash/smart. Read-only: never changes FTL or device state.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ftl_int.h"

/* NVMe data units are thousands of 512-byte units, rounded up. */
#define FTL_SMART_DATA_UNIT 512000ull
/* Emulated spare threshold: below a tenth of the GC reserve, GC itself runs short. */
#define FTL_SMART_EMU_SPARE_THRESHOLD 10

static uint64_t data_units(uint64_t bytes)
{
	return bytes / FTL_SMART_DATA_UNIT + (bytes % FTL_SMART_DATA_UNIT != 0);
}

void ftl_smart_emulate(const struct ftl_stats *st, const struct ftl_dev_stats *ds, uint32_t reserve,
                       struct ftl_dev_smart *s)
{
	uint32_t free_segs = st->segments_free < reserve ? st->segments_free : reserve;
	double used = st->life_used_pct;

	memset(s, 0, sizeof(*s));
	s->emulated = true;
	s->data_units_written = data_units(ds->bytes_written);
	s->data_units_read = data_units(ds->bytes_read);
	s->host_write_commands = ds->writes;
	s->host_read_commands = ds->reads;
	/* Reads the FTL could not return (device errors and checksum failures): what NVMe calls
	 * unrecovered data integrity errors. Checksum failures found by the scan at open are left
	 * out: a pack torn by a power cut fails them and held nothing acknowledged. */
	s->media_errors = st->read_errors;
	s->percentage_used = used >= 255.0 ? 255 : used > 0 ? (uint8_t)used : 0;
	/* The flash a drive keeps spare is, here, the free segments held back for GC: user writes
	 * never take them, so they only run down when GC cannot keep up with a full device. */
	s->available_spare_pct = reserve ? (uint8_t)(100ull * free_segs / reserve) : 100;
	s->available_spare_threshold = FTL_SMART_EMU_SPARE_THRESHOLD;
	if (s->available_spare_pct < s->available_spare_threshold)
		s->critical_warning |= FTL_SMART_WARN_SPARE;
	if (s->media_errors)
		s->critical_warning |= FTL_SMART_WARN_RELIABILITY;
}

int ftl_get_smart(struct ftl *ftl, struct ftl_dev_smart *smart)
{
	struct ftl_stats st;
	struct ftl_dev_stats ds;
	int err;

	if (!ftl || !smart)
		return -EINVAL;
	err = ftl_dev_smart(ftl->dev, smart);
	if (err != -EOPNOTSUPP)
		return err;
	ftl_get_stats(ftl, &st);
	ftl_dev_get_stats(ftl->dev, &ds);
	/* Fixed at open (ftl_int.h): no lock needed. */
	ftl_smart_emulate(&st, &ds, ftl->reserve, smart);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Printers                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static const struct {
	uint8_t bit;
	const char *name;
} ftl_smart_warn_names[] = {
    {FTL_SMART_WARN_SPARE, "spare"},
    {FTL_SMART_WARN_TEMPERATURE, "temperature"},
    {FTL_SMART_WARN_RELIABILITY, "reliability"},
    {FTL_SMART_WARN_READ_ONLY, "read-only"},
    {FTL_SMART_WARN_BACKUP, "backup"},
    {FTL_SMART_WARN_PMR, "pmr-read-only"},
};
#define FTL_SMART_NWARN (sizeof(ftl_smart_warn_names) / sizeof(ftl_smart_warn_names[0]))

/* snprintf into BUF at *POS, keeping the total length like snprintf does. */
static void out(char *buf, size_t len, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void out(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(*pos < len ? buf + *pos : NULL, *pos < len ? len - *pos : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		*pos += (size_t)n;
}

static const char *source_name(const struct ftl_dev_smart *s)
{
	return s->emulated ? "emulated (not an NVMe device)" : "nvme";
}

/* The counters only an NVMe controller keeps: n/a when emulated. */
#define FTL_SMART_NVME_ONLY(X, s)                                                                  \
	X("unsafe_shutdowns", "unsafe shutdowns", (s)->unsafe_shutdowns)                           \
	X("power_cycles", "power cycles", (s)->power_cycles)                                       \
	X("power_on_hours", "power on hours", (s)->power_on_hours)                                 \
	X("error_log_entries", "error log entries", (s)->error_log_entries)                        \
	X("warning_temp_minutes", "warning temp time (min)", (uint64_t)(s)->warning_temp_minutes)  \
	X("critical_temp_minutes", "critical temp time (min)", (uint64_t)(s)->critical_temp_minutes)

int ftl_smart_to_text(const struct ftl_dev_smart *s, char *buf, size_t len)
{
	size_t pos = 0;
	const char *sep = " (";

	out(buf, len, &pos, "source: %s\n", source_name(s));
	out(buf, len, &pos, "%-27s 0x%02x", "critical warning:", s->critical_warning);
	for (size_t i = 0; i < FTL_SMART_NWARN; i++) {
		if (s->critical_warning & ftl_smart_warn_names[i].bit) {
			out(buf, len, &pos, "%s%s", sep, ftl_smart_warn_names[i].name);
			sep = ", ";
		}
	}
	out(buf, len, &pos, "%s\n", s->critical_warning ? ")" : " (none)");
	if (s->has_temperature)
		out(buf, len, &pos, "%-27s %d C\n", "temperature:", s->temperature_c);
	else
		out(buf, len, &pos, "%-27s n/a\n", "temperature:");
	out(buf, len, &pos, "%-27s %u %%\n", "available spare:", s->available_spare_pct);
	out(buf, len, &pos, "%-27s %u %%\n",
	    "available spare threshold:", s->available_spare_threshold);
	out(buf, len, &pos, "%-27s %u %%\n", "percentage used:", s->percentage_used);
	out(buf, len, &pos, "%-27s %llu (%.1f MB)\n",
	    "data units written:", (unsigned long long)s->data_units_written,
	    s->data_units_written * 0.512);
	out(buf, len, &pos, "%-27s %llu (%.1f MB)\n",
	    "data units read:", (unsigned long long)s->data_units_read, s->data_units_read * 0.512);
	out(buf, len, &pos, "%-27s %llu\n",
	    "host write commands:", (unsigned long long)s->host_write_commands);
	out(buf, len, &pos, "%-27s %llu\n",
	    "host read commands:", (unsigned long long)s->host_read_commands);
	out(buf, len, &pos, "%-27s %llu\n", "media errors:", (unsigned long long)s->media_errors);
#define FTL_SMART_TEXT(key, label, val)                                                            \
	if (s->emulated)                                                                           \
		out(buf, len, &pos, "%-27s n/a\n", label ":");                                     \
	else                                                                                       \
		out(buf, len, &pos, "%-27s %llu\n", label ":", (unsigned long long)(val));
	FTL_SMART_NVME_ONLY(FTL_SMART_TEXT, s)
#undef FTL_SMART_TEXT
	if (s->emulated)
		out(buf, len, &pos,
		    "note: data units, commands and media errors count since this open;\n"
		    "note: percentage used is mean erases over rated P/E cycles, spare is free "
		    "segments over the GC reserve\n");
	return (int)pos;
}

int ftl_smart_to_json(const struct ftl_dev_smart *s, char *buf, size_t len)
{
	size_t pos = 0;
	const char *sep = "";

	out(buf, len, &pos, "{\"source\":\"%s\",\"emulated\":%s,\"critical_warning\":%u,",
	    s->emulated ? "emulated" : "nvme", s->emulated ? "true" : "false", s->critical_warning);
	out(buf, len, &pos, "\"critical_warnings\":[");
	for (size_t i = 0; i < FTL_SMART_NWARN; i++) {
		if (s->critical_warning & ftl_smart_warn_names[i].bit) {
			out(buf, len, &pos, "%s\"%s\"", sep, ftl_smart_warn_names[i].name);
			sep = ",";
		}
	}
	out(buf, len, &pos, "],");
	if (s->has_temperature)
		out(buf, len, &pos, "\"temperature_c\":%d,", s->temperature_c);
	else
		out(buf, len, &pos, "\"temperature_c\":null,");
	out(buf, len, &pos,
	    "\"available_spare_pct\":%u,\"available_spare_threshold_pct\":%u,"
	    "\"percentage_used\":%u,\"data_units_written\":%llu,\"data_units_read\":%llu,"
	    "\"host_write_commands\":%llu,\"host_read_commands\":%llu,\"media_errors\":%llu",
	    s->available_spare_pct, s->available_spare_threshold, s->percentage_used,
	    (unsigned long long)s->data_units_written, (unsigned long long)s->data_units_read,
	    (unsigned long long)s->host_write_commands, (unsigned long long)s->host_read_commands,
	    (unsigned long long)s->media_errors);
#define FTL_SMART_JSON(key, label, val)                                                            \
	if (s->emulated)                                                                           \
		out(buf, len, &pos, ",\"" key "\":null");                                          \
	else                                                                                       \
		out(buf, len, &pos, ",\"" key "\":%llu", (unsigned long long)(val));
	FTL_SMART_NVME_ONLY(FTL_SMART_JSON, s)
#undef FTL_SMART_JSON
	out(buf, len, &pos, "}\n");
	return (int)pos;
}
