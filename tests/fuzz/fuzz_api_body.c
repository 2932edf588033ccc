/* tests/fuzz/fuzz_api_body.c - libFuzzer target for the REST API's request handling (fs/api):
 * the first byte picks a route, the second how its path is filled (names good and bad, or a
 * URL taken from the input), the rest is the JSON body. Whatever comes in, a ctl line that
 * runs is one line of at most CTL's word count with every word a name, a size or a value, and
 * every reply is a status with a JSON or text body.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "papi.h"

static struct papi_tokens *fz_tokens;

/* A ctl line the API made: one line, 1..8 words, each printable without blanks. */
static void check_line(const char *line)
{
	unsigned words = 0;
	bool in_word = false;

	if (!*line || strlen(line) >= 1024)
		abort();
	for (const char *s = line; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == ' ') {
			in_word = false;
			continue;
		}
		if (c < 0x21 || c > 0x7e)
			abort();
		if (!in_word)
			words++;
		in_word = true;
	}
	if (words < 2 || words > 8)
		abort();
}

static int fz_ctl(void *ctx, const char *line, char *msg, size_t len)
{
	(void)ctx;
	check_line(line);
	snprintf(msg, len, "ok");
	return 0;
}

/* Files are only ever named from checked names: no empty, "." or ".." component, no way up
 * or out. */
static void check_path(const char *path)
{
	for (const char *s = path;; s++) {
		size_t n = strcspn(s, "/");
		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			abort();
		s += n;
		if (!*s)
			break;
	}
}

static int fz_read(void *ctx, const char *path, struct pfs_buf *b)
{
	(void)ctx;
	check_path(path);
	pfs_buf_printf(b, "{}\n");
	return 0;
}

static int fz_list(void *ctx, const char *path, struct pfs_buf *b)
{
	(void)ctx;
	check_path(path);
	pfs_buf_printf(b, "a\nb\n");
	return 0;
}

static const struct papi_ops fz_ops = {fz_ctl, fz_read, fz_list};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[] = "/tmp/fuzz_api_body.XXXXXX", msg[256];
	int fd = mkstemp(path);

	(void)argc, (void)argv;
	if (fd < 0 || dprintf(fd, "rw fuzz-token-0123456789\n") < 0)
		abort();
	close(fd);
	if (papi_tokens_load(path, &fz_tokens, msg, sizeof(msg)))
		abort();
	unlink(path);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"vol", "s1", "a.b-c_d", ".x", "a b", ""};
	const char *method, *path, *args[4];
	char line[1024], msg[512], url[512];

	if (size < 2)
		return 0;
	papi_route_at(data[0] % papi_nroutes, &method, &path);
	const char *body = (const char *)data + 2;
	size_t len = size - 2;
	if (data[1] < 128) {
		/* The body step alone, path arguments from the table above. */
		for (unsigned i = 0; i < 4; i++)
			args[i] = names[(data[1] >> (2 * i)) % 6];
		int st = papi_body_to_ctl(method, path, args, body, len, line, sizeof(line), msg,
		                          sizeof(msg));
		if (st == 200)
			check_line(line);
		else if (st != 0 && st < 400)
			abort();
		return 0;
	}
	/* The whole request: the URL is the body's first line. */
	const char *nl = memchr(body, '\n', len);
	size_t ul = nl ? (size_t)(nl - body) : len;
	if (ul >= sizeof(url))
		ul = sizeof(url) - 1;
	memcpy(url, body, ul);
	url[ul] = '\0';
	if (strlen(url) != ul)
		return 0; /* HTTP cannot carry a NUL in a path */
	struct papi_request rq = {method,
	                          url,
	                          "Bearer fuzz-token-0123456789",
	                          nl ? nl + 1 : body + len,
	                          nl ? len - ul - 1 : 0,
	                          false};
	struct papi_reply r;
	papi_handle(&fz_ops, NULL, fz_tokens, &rq, &r);
	if (r.status < 200 || r.status > 599 || !r.content_type || !r.body.data)
		abort();
	papi_reply_free(&r);
	return 0;
}
