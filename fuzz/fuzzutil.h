/* SPDX-License-Identifier: MIT */
/*
 * fuzzutil: what the libFuzzer harnesses in fuzz/ share.  Prefix fz_.
 *
 * A harness hands a parser a copy of the input in a buffer of exactly the
 * input's size (fz_dup), so that a read past the end is an ASan report,
 * or a NUL-terminated copy (fz_str) where the parser's contract is a C
 * string (a FastCGI param, a JSON member).  Files a harness needs (a
 * configuration, a key, a store) live in one private temporary directory
 * that is removed at exit.  Nothing here opens a socket.
 */
#ifndef IA_FUZZUTIL_H
#define IA_FUZZUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/principal.h"

/* libFuzzer's entry points (defined by each harness). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* size bytes of data in a new buffer of exactly size bytes (at least one
 * byte is allocated for size 0).  Caller frees. */
char *fz_dup(const uint8_t *data, size_t size);
/* data as a new NUL-terminated string of size + 1 bytes.  Caller frees. */
char *fz_str(const uint8_t *data, size_t size);

/* The harness's private directory (made on first use, removed at exit). */
const char *fz_dir(void);
/* Write len bytes of text to fz_dir()/name with mode; the path into out
 * (outlen bytes).  Aborts on failure. */
void fz_write(const char *name, const char *text, size_t len, int mode,
    char *out, size_t outlen);
/* A configuration: a JWT secret in fz_dir(), a store and artifact
 * directory there, then extra (NULL or lines ending in "\n").  Aborts when
 * it does not load.  Caller frees with config_free(). */
struct config *fz_config(const char *extra);
/* Fill p as sub holding the space-separated scopes.  Caller clears it
 * with principal_clear(). */
void fz_principal(struct principal *p, const char *sub, const char *scopes);
/* Send the agent's log lines to /dev/null. */
void fz_quiet(void);

/*
 * The request path's state without FastCGI: fz_config(extra), a store in
 * fz_dir(), the task executor (its changes notify nobody, so no push is
 * ever delivered), the card, a2a and the envelope.  The configuration
 * stays for the process's life.
 */
const struct config *fz_agent_start(const char *extra);
/* Count one request; every FZ_RECYCLE of them the executor is stopped and
 * the store deleted and made anew, so that what the inputs create does
 * not fill the disk over millions of runs, nor slow every list (a few
 * hundred tasks, not tens of thousands: 20 times the speed). */
#define FZ_RECYCLE 1000
void fz_agent_tick(void);

#endif
