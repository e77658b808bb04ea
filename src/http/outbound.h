/* SPDX-License-Identifier: MIT */
/*
 * outbound: the SSRF filter every outbound URL passes (push webhooks now,
 * video URLs later), and the curl options every outbound transfer uses.
 *
 * Use:
 *	struct outbound_target t;
 *	struct curl_slist *rl = NULL;
 *	if (outbound_check_url(cfg, url, &t, &err) < 0) { log err; free(err); }
 *	curl_easy_setopt(h, CURLOPT_URL, url);
 *	outbound_curl_setup(cfg, h, &t, timeout, &rl);
 *	... transfer ...
 *	curl_easy_cleanup(h); curl_slist_free_all(rl);
 *
 * The address that was checked is the only one curl may connect to: it is
 * pinned with CURLOPT_RESOLVE (no second DNS lookup, so no DNS rebinding)
 * and an open-socket callback refuses any other address.
 */
#ifndef IA_OUTBOUND_H
#define IA_OUTBOUND_H

#include <curl/curl.h>

#include "core/config.h"
#include "lib/attrs.h"

#define OUTBOUND_URL_MAX 2048

struct outbound_target {
	char host[256];		/* host as in URL (brackets stripped
				   for IPv6) */
	int port;		/* explicit or 443 */
	char addr[64];		/* the checked numeric address the
				   request must use */
	char resolve[340];	/* "host:port:addr" for CURLOPT_RESOLVE
				   (pins the address); "" for an IPv6
				   literal host, which curl cannot take
				   there and does not resolve */
};

/*
 * Parse url (must be https://, no userinfo, host non-empty, port 1..65535,
 * total length <= OUTBOUND_URL_MAX, no space, control or non-ASCII bytes),
 * resolve its host with getaddrinfo (blocks for a DNS lookup unless the host
 * is numeric), and reject it if ANY resolved address is loopback, private
 * (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, fec0::/10), link-local
 * (169.254/16, fe80::/10), unspecified, 0/8, multicast, broadcast or
 * reserved (240/4), or such an IPv4 address inside IPv4-mapped,
 * IPv4-compatible, NAT64 (64:ff9b::/96) or 6to4 (2002::/16) IPv6 - unless
 * that address is inside one of the cfg->ssrf_allow CIDRs.
 *
 * On success fills *t with the first acceptable address and returns 0.
 * On failure returns -1 and sets *err to a message saying why (caller
 * frees), e.g. "URL host resolves to a private address 10.0.0.5".  Messages
 * name at most the host and address, never the path, query or userinfo.
 */
WARN_UNUSED_RESULT
int outbound_check_url(const struct config *cfg, const char *url,
    struct outbound_target *t, char **err);

/*
 * Apply the common options to an easy handle h: CURLOPT_NOSIGNAL, TLS
 * verification on (peer and host, TLS >= 1.2), CAINFO from
 * cfg->outbound_ca_file when set, https only (also for redirects, which are
 * not followed), no proxy, the address pinned to t->addr (CURLOPT_RESOLVE
 * plus an open-socket check), connect timeout 5 s, total timeout timeout_s,
 * and the response body discarded (set CURLOPT_WRITEFUNCTION afterwards to
 * keep it).  The caller sets CURLOPT_URL to the URL that was checked.
 *
 * t is borrowed: it must stay valid, unchanged, until the transfer ends.
 * *resolve_list receives the slist given to CURLOPT_RESOLVE (NULL when none);
 * the caller frees it with curl_slist_free_all() after the transfer.
 */
void outbound_curl_setup(const struct config *cfg, CURL *h,
    const struct outbound_target *t, long timeout_s,
    struct curl_slist **resolve_list);

#endif
