/* SPDX-License-Identifier: MIT */
/*
 * noresolve: the harnesses that reach the push-notification URL check
 * (outbound_check_url) must not send DNS queries for the hosts a fuzzer
 * makes up.  This getaddrinfo, linked into those harnesses, takes the
 * place of libc's and resolves numeric addresses only (AI_NUMERICHOST):
 * every name is EAI_NONAME, which the agent refuses as a host that does
 * not resolve.  Nothing connects: no push is delivered in the harnesses.
 */
#define _GNU_SOURCE
#include "auto-config.h"

#include <dlfcn.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *,
    struct addrinfo **);

int getaddrinfo(const char *node, const char *service,
    const struct addrinfo *hints, struct addrinfo **res);

int
getaddrinfo(const char *node, const char *service,
    const struct addrinfo *hints, struct addrinfo **res)
{
	static gai_fn real;
	struct addrinfo h;

	if (real == NULL)
		real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
	if (real == NULL)
		abort();
	if (hints != NULL)
		h = *hints;
	else
		memset(&h, 0, sizeof(h));
	h.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV;
	return real(node, service, &h, res);
}
