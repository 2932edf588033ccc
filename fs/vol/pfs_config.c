/* fs/pfs_config.c - live tunables: parsed and checked here (a bad value is EINVAL and changes
 * nothing), applied to the engine and the commit thread, and persisted in SQLite so they
 * survive a remount. Mount options are the same keys.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pfs_vol_int.h"

const char *const pfs_config_names[PFS_CFG_COUNT] = {
#define PFS_CONFIG_NAME(n, s) s,
    PFS_CONFIG_KEYS(PFS_CONFIG_NAME)
#undef PFS_CONFIG_NAME
};

int pfs_config_key(const char *name)
{
	for (int i = 0; i < PFS_CFG_COUNT; i++)
		if (!strcmp(name, pfs_config_names[i]))
			return i;
	return -ENOENT;
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

/* Checks VALUE for KEY and writes the parsed setting into CFG. */
static int config_parse(struct pfs *p, int key, const char *value, struct pfs_config *cfg)
{
	char *end;

	switch (key) {
	case PFS_CFG_COMPRESSION:
		if (engine_codec_parse(value, &cfg->codec, &cfg->level)) {
			pfs_set_msg(p, "compression must be lz4, zstd, zstd:LEVEL (1..19) or none");
			return -EINVAL;
		}
		return 0;
	case PFS_CFG_DEDUPE:
		if (parse_bool(value, &cfg->dedupe)) {
			pfs_set_msg(p, "dedupe must be on or off");
			return -EINVAL;
		}
		return 0;
	case PFS_CFG_COMMIT_INTERVAL_MS: {
		errno = 0;
		unsigned long ms = strtoul(value, &end, 10);
		if (errno || end == value || *end || value[0] == '-' || ms < 10 || ms > 600000) {
			pfs_set_msg(p, "commit_interval_ms must be an integer from 10 to 600000");
			return -EINVAL;
		}
		cfg->commit_interval_ms = (uint32_t)ms;
		return 0;
	}
	case PFS_CFG_ANALYTICS_INTERVAL: {
		errno = 0;
		unsigned long s = strtoul(value, &end, 10);
		if (errno || end == value || *end || value[0] == '-' || s < 1 || s > 86400) {
			pfs_set_msg(
			    p, "analytics_interval must be an integer from 1 to 86400 (seconds)");
			return -EINVAL;
		}
		cfg->analytics_interval = (uint32_t)s;
		return 0;
	}
	case PFS_CFG_TEMP_COLD_AFTER:
	case PFS_CFG_TEMP_FROZEN_AFTER:
	case PFS_CFG_TEMP_HOT_HEAT:
	case PFS_CFG_TEMP_HALF_LIFE: {
		/* Seconds up to ten years (a u32 of Unix time is good to 2106); heat: accesses. */
		errno = 0;
		unsigned long s = strtoul(value, &end, 10);
		if (errno || end == value || *end || value[0] == '-' || s < 1 || s > 315360000) {
			pfs_set_msg(p, "%s must be an integer from 1 to 315360000%s",
			            pfs_config_names[key],
			            key == PFS_CFG_TEMP_HOT_HEAT ? "" : " (seconds)");
			return -EINVAL;
		}
		if (key == PFS_CFG_TEMP_COLD_AFTER)
			cfg->temp_cold_after = (uint32_t)s;
		else if (key == PFS_CFG_TEMP_FROZEN_AFTER)
			cfg->temp_frozen_after = (uint32_t)s;
		else if (key == PFS_CFG_TEMP_HOT_HEAT)
			cfg->temp_hot_heat = (uint32_t)s;
		else
			cfg->temp_half_life = (uint32_t)s;
		return 0;
	}
	case PFS_CFG_TIER_RATE: {
		uint64_t r;
		if (value[0] == '-' || pfs_parse_size(value, &r) || r > (1ull << 40)) {
			pfs_set_msg(p,
			            "tier_rate must be bytes a second (K, M, G suffixes; at most "
			            "1T), 0 pauses the tiering mover");
			return -EINVAL;
		}
		cfg->tier_rate = r;
		return 0;
	}
	default:
		return -ENOENT;
	}
}

static void config_format(const struct pfs_config *cfg, int key, char *out, size_t len)
{
	switch (key) {
	case PFS_CFG_COMPRESSION:
		if (cfg->codec == ENGINE_CODEC_ZSTD && cfg->level)
			snprintf(out, len, "zstd:%d", cfg->level);
		else
			snprintf(out, len, "%s", engine_codec_name(cfg->codec));
		break;
	case PFS_CFG_DEDUPE:
		snprintf(out, len, "%s", cfg->dedupe ? "on" : "off");
		break;
	case PFS_CFG_COMMIT_INTERVAL_MS:
		snprintf(out, len, "%u", cfg->commit_interval_ms);
		break;
	case PFS_CFG_ANALYTICS_INTERVAL:
		snprintf(out, len, "%u", cfg->analytics_interval);
		break;
	case PFS_CFG_TEMP_COLD_AFTER:
		snprintf(out, len, "%u", cfg->temp_cold_after);
		break;
	case PFS_CFG_TEMP_FROZEN_AFTER:
		snprintf(out, len, "%u", cfg->temp_frozen_after);
		break;
	case PFS_CFG_TEMP_HOT_HEAT:
		snprintf(out, len, "%u", cfg->temp_hot_heat);
		break;
	case PFS_CFG_TEMP_HALF_LIFE:
		snprintf(out, len, "%u", cfg->temp_half_life);
		break;
	case PFS_CFG_TIER_RATE:
		snprintf(out, len, "%llu", (unsigned long long)cfg->tier_rate);
		break;
	default:
		snprintf(out, len, "?");
	}
}

static void config_apply(struct pfs *p, const struct pfs_config *cfg)
{
	pthread_mutex_lock(&p->cfg_lock);
	p->cfg = *cfg;
	pthread_mutex_unlock(&p->cfg_lock);
	if (p->eng) {
		engine_set_codec(p->eng, cfg->codec, cfg->level);
		engine_set_dedupe(p->eng, cfg->dedupe);
	}
}

int pfs_config_set(struct pfs *p, const char *key, const char *value, bool persist)
{
	struct pfs_config cfg;
	char canon[64];
	int k = pfs_config_key(key), rc;

	if (k < 0) {
		pfs_set_msg(p, "unknown setting '%s'", key);
		return -EINVAL;
	}
	pthread_mutex_lock(&p->cfg_lock);
	cfg = p->cfg;
	pthread_mutex_unlock(&p->cfg_lock);
	rc = config_parse(p, k, value, &cfg);
	if (rc)
		return rc;
	config_format(&cfg, k, canon, sizeof(canon));
	if (persist && !p->opts.readonly) {
		pthread_mutex_lock(&p->commit_lock);
		rc = pfs_meta_begin(p->meta);
		if (!rc) {
			rc = pfs_meta_config_set(p->meta, key, canon);
			if (rc)
				pfs_meta_rollback(p->meta);
			else
				rc = pfs_meta_commit(p->meta);
		}
		if (!rc)
			pfs_log_change(p,
			               &(struct pfs_change){.kind = PFS_CHANGE_CONFIG_SET,
			                                    .name = pfs_config_names[k],
			                                    .value = canon},
			               0, 0);
		pthread_mutex_unlock(&p->commit_lock);
		if (rc) {
			pfs_fail(p, PFS_ERR_META_WRITE, rc, "setting %s", key);
			return rc;
		}
	}
	config_apply(p, &cfg);
	if (k == PFS_CFG_COMMIT_INTERVAL_MS)
		pfs_commit_kick(p);
	return 0;
}

int pfs_config_get(struct pfs *p, const char *key, char *out, size_t len)
{
	struct pfs_config cfg;
	int k = pfs_config_key(key);

	if (k < 0)
		return -ENOENT;
	pthread_mutex_lock(&p->cfg_lock);
	cfg = p->cfg;
	pthread_mutex_unlock(&p->cfg_lock);
	config_format(&cfg, k, out, len);
	return 0;
}

int pfs_config_load(struct pfs *p)
{
	char value[64];
	int rc;

	for (int k = 0; k < PFS_CFG_COUNT; k++) {
		if (pfs_meta_config_get(p->meta, pfs_config_names[k], value, sizeof(value)))
			continue;
		struct pfs_config cfg = p->cfg;
		if (config_parse(p, k, value, &cfg) == 0)
			p->cfg = cfg;
		else
			pfs_logl(LOG_WARNING, "pstorfs: ignoring stored %s=%s", pfs_config_names[k],
			         value);
	}
	/* Mount options override, and stick like `config set`. */
	if (p->opts.compression) {
		rc = pfs_config_set(p, "compression", p->opts.compression, true);
		if (rc)
			return rc;
	}
	if (p->opts.dedupe >= 0) {
		rc = pfs_config_set(p, "dedupe", p->opts.dedupe ? "on" : "off", true);
		if (rc)
			return rc;
	}
	if (p->opts.commit_interval_ms >= 0) {
		snprintf(value, sizeof(value), "%d", p->opts.commit_interval_ms);
		rc = pfs_config_set(p, "commit_interval_ms", value, true);
		if (rc)
			return rc;
	}
	if (p->opts.analytics_interval > 0) {
		snprintf(value, sizeof(value), "%d", p->opts.analytics_interval);
		rc = pfs_config_set(p, "analytics_interval", value, true);
		if (rc)
			return rc;
	}
	return 0;
}
