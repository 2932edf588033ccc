/* fs/api/papi_auth.c - the API's bearer tokens: the token file's form and the constant-time
 * check of an Authorization header. Only SHA-256 digests of the tokens stay in memory, so the
 * comparison takes the same time whatever the length or the first wrong byte.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "papi.h"

#define TOKEN_MIN  16
#define TOKEN_MAX  256
#define TOKENS_MAX 16

struct papi_tokens {
	unsigned n;
	struct {
		uint8_t digest[SHA256_DIGEST_LENGTH];
		bool write;
	} t[TOKENS_MAX];
};

static bool token_ok(const char *s, size_t n)
{
	if (n < TOKEN_MIN || n > TOKEN_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isgraph((unsigned char)s[i]))
			return false;
	return true;
}

static int parse_line(struct papi_tokens *t, char *line, unsigned lineno, const char *path,
                      char *msg, size_t msglen)
{
	char *save = NULL, *kind = strtok_r(line, " \t\r", &save);
	char *tok = kind ? strtok_r(NULL, " \t\r", &save) : NULL;

	if (!kind || kind[0] == '#')
		return 0;
	if ((strcmp(kind, "rw") && strcmp(kind, "ro")) || !tok || strtok_r(NULL, " \t\r", &save) ||
	    !token_ok(tok, strlen(tok))) {
		snprintf(msg, msglen,
		         "api_token_file %s: line %u: want \"rw TOKEN\" or \"ro TOKEN\" (%d..%d "
		         "printable characters)",
		         path, lineno, TOKEN_MIN, TOKEN_MAX);
		return -EINVAL;
	}
	if (t->n == TOKENS_MAX) {
		snprintf(msg, msglen, "api_token_file %s: more than %d tokens", path, TOKENS_MAX);
		return -EINVAL;
	}
	SHA256((const unsigned char *)tok, strlen(tok), t->t[t->n].digest);
	t->t[t->n++].write = !strcmp(kind, "rw");
	return 0;
}

int papi_tokens_load(const char *path, struct papi_tokens **out, char *msg, size_t msglen)
{
	struct papi_tokens *t = calloc(1, sizeof(*t));
	char line[TOKEN_MAX + 64];
	unsigned lineno = 0;
	struct stat st;
	FILE *f = NULL;
	int rc = 0;

	if (!t)
		return -ENOMEM;
	f = fopen(path, "re");
	if (!f) {
		rc = -errno;
		snprintf(msg, msglen, "api_token_file %s: %s", path, strerror(errno));
		goto err_free;
	}
	/* A token others can read is a token others have. */
	if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		snprintf(msg, msglen,
		         "api_token_file %s: must be a regular file only its owner can read "
		         "(chmod 600)",
		         path);
		rc = -EACCES;
		goto err_close;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		size_t n = strlen(line);
		if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
			snprintf(msg, msglen, "api_token_file %s: line %u too long", path, lineno);
			rc = -EINVAL;
			goto err_close;
		}
		line[strcspn(line, "\n")] = '\0';
		rc = parse_line(t, line, lineno, path, msg, msglen);
		if (rc)
			goto err_close;
	}
	if (!t->n) {
		snprintf(msg, msglen, "api_token_file %s: no token (\"rw TOKEN\" or \"ro TOKEN\")",
		         path);
		rc = -EINVAL;
		goto err_close;
	}
	fclose(f);
	*out = t;
	return 0;
err_close:
	fclose(f);
err_free:
	OPENSSL_cleanse(t, sizeof(*t));
	free(t);
	return rc;
}

void papi_tokens_free(struct papi_tokens *t)
{
	if (!t)
		return;
	OPENSSL_cleanse(t, sizeof(*t));
	free(t);
}

enum papi_access papi_tokens_check(const struct papi_tokens *t, const char *auth)
{
	uint8_t d[SHA256_DIGEST_LENGTH];
	enum papi_access a = PAPI_DENIED;

	if (!t || !auth || strncasecmp(auth, "Bearer ", 7))
		return PAPI_DENIED;
	auth += 7;
	while (*auth == ' ')
		auth++;
	if (!token_ok(auth, strlen(auth)))
		return PAPI_DENIED;
	SHA256((const unsigned char *)auth, strlen(auth), d);
	/* Every token is compared, so the time does not say which one matched. */
	for (unsigned i = 0; i < t->n; i++)
		if (!CRYPTO_memcmp(d, t->t[i].digest, sizeof(d)) && a != PAPI_WRITE)
			a = t->t[i].write ? PAPI_WRITE : PAPI_READ;
	return a;
}
