/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"
#include "lib/log.h"
#include "http/outbound.h"
#include "lib/version.h"
#include "lib/xalloc.h"

/* An address as 16 bytes; IPv4 uses the first 4. */
struct oaddr {
	int family;
	unsigned char b[16];
};

/* Why an IPv4 address may not be contacted, or NULL when it may. */
static const char *
classify_v4(const unsigned char *a)
{
	if (a[0] == 0)
		return a[1] == 0 && a[2] == 0 && a[3] == 0 ?
		    "unspecified" : "this-network (0/8)";
	if (a[0] == 10)
		return "private";
	if (a[0] == 100 && (a[1] & 0xc0) == 64)
		return "private (CGNAT)";
	if (a[0] == 127)
		return "loopback";
	if (a[0] == 169 && a[1] == 254)
		return "link-local";
	if (a[0] == 172 && (a[1] & 0xf0) == 16)
		return "private";
	if (a[0] == 192 && a[1] == 168)
		return "private";
	if (a[0] >= 224 && a[0] < 240)
		return "multicast";
	if (a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255)
		return "broadcast";
	if (a[0] >= 240)
		return "reserved";
	return NULL;
}

static bool
all_zero(const unsigned char *p, size_t n)
{
	while (n-- > 0)
		if (*p++ != 0)
			return false;
	return true;
}

/* The IPv4 address embedded in an IPv6 one (mapped, compatible, NAT64,
   6to4), or NULL. */
static const unsigned char *
embedded_v4(const unsigned char *a)
{
	static const unsigned char nat64[12] =
	    { 0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 };

	if (all_zero(a, 10) && a[10] == 0xff && a[11] == 0xff)
		return a + 12;		/* ::ffff:0:0/96 mapped */
	if (all_zero(a, 12))
		return a + 12;		/* ::/96 compatible (deprecated) */
	if (memcmp(a, nat64, 12) == 0)
		return a + 12;		/* 64:ff9b::/96 */
	if (a[0] == 0x20 && a[1] == 0x02)
		return a + 2;		/* 2002::/16 6to4 */
	return NULL;
}

static const char *
classify_v6(const unsigned char *a)
{
	const unsigned char *v4;
	const char *why;

	if (all_zero(a, 16))
		return "unspecified";
	if (all_zero(a, 15) && a[15] == 1)
		return "loopback";
	if ((a[0] & 0xfe) == 0xfc)
		return "private";
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return "link-local";
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
		return "private (site-local)";
	if (a[0] == 0xff)
		return "multicast";
	v4 = embedded_v4(a);
	if (v4 != NULL) {
		if (all_zero(a, 12))
			return "reserved (IPv4-compatible)";
		why = classify_v4(v4);
		if (why != NULL)
			return why;
	}
	return NULL;
}

static bool
prefix_match(const unsigned char *a, const unsigned char *net, int prefix)
{
	int full = prefix / 8, rest = prefix % 8;
	unsigned char mask;

	if (memcmp(a, net, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (net[full] & mask);
}

/* Is a inside one of the ssrf_allow CIDRs?  An IPv4 address is also tried
   as IPv4-mapped IPv6, an IPv4-mapped IPv6 one also as plain IPv4. */
static bool
allowed(const struct config *cfg, const struct oaddr *a)
{
	unsigned char v4[4], v6[16];
	bool have4 = false, have6 = false, ok = false;
	char *list, *tok, *save = NULL;

	if (cfg == NULL || cfg->ssrf_allow == NULL ||
	    cfg->ssrf_allow[0] == '\0')
		return false;
	if (a->family == AF_INET) {
		memcpy(v4, a->b, 4);
		memset(v6, 0, 10);
		v6[10] = v6[11] = 0xff;
		memcpy(v6 + 12, a->b, 4);
		have4 = have6 = true;
	} else {
		memcpy(v6, a->b, 16);
		have6 = true;
		if (all_zero(a->b, 10) && a->b[10] == 0xff &&
		    a->b[11] == 0xff) {
			memcpy(v4, a->b + 12, 4);
			have4 = true;
		}
	}
	list = xstrdup(cfg->ssrf_allow);
	for (tok = strtok_r(list, ", \t", &save); tok != NULL && !ok;
	    tok = strtok_r(NULL, ", \t", &save)) {
		unsigned char net[16];
		int fam, prefix;

		if (config_parse_cidr(tok, net, &fam, &prefix) < 0)
			continue;
		if (fam == AF_INET && have4)
			ok = prefix_match(v4, net, prefix);
		else if (fam == AF_INET6 && have6)
			ok = prefix_match(v6, net, prefix);
	}
	free(list);
	return ok;
}

static bool
is_host_char(int c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_';
}

/*
 * Split url into host and port by our own strict reading; -1 with *err
 * when it is not an https URL we accept.
 */
static int
parse_url(const char *url, struct outbound_target *t, bool *v6literal,
    char **err)
{
	const char *auth, *hp, *he, *rest, *ae;
	size_t len, alen, hlen, i;
	long port = 443;

	*v6literal = false;
	if (url == NULL || url[0] == '\0') {
		*err = xstrdup("URL is empty");
		return -1;
	}
	len = strlen(url);
	if (len > OUTBOUND_URL_MAX) {
		*err = xasprintf("URL is longer than %d bytes",
		    OUTBOUND_URL_MAX);
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)url[i];
		if (c <= 0x20 || c >= 0x7f) {
			*err = xstrdup("URL contains a space, control or "
			    "non-ASCII character");
			return -1;
		}
		if (c == '\\') {
			*err = xstrdup("URL contains a backslash");
			return -1;
		}
	}
	if (strncasecmp(url, "https://", 8) != 0) {
		*err = xstrdup("URL must start with https://");
		return -1;
	}
	auth = url + 8;
	alen = strcspn(auth, "/?#");
	ae = auth + alen;
	if (memchr(auth, '@', alen) != NULL) {
		*err = xstrdup("URL must not contain user information");
		return -1;
	}
	if (memchr(auth, '%', alen) != NULL) {
		*err = xstrdup("URL host must not be percent-encoded");
		return -1;
	}
	if (auth[0] == '[') {
		hp = auth + 1;
		he = memchr(hp, ']', (size_t)(ae - hp));
		if (he == NULL) {
			*err = xstrdup("URL has a malformed IPv6 literal");
			return -1;
		}
		rest = he + 1;
		*v6literal = true;
	} else {
		hp = auth;
		he = memchr(hp, ':', alen);
		if (he == NULL)
			he = ae;
		rest = he;
	}
	hlen = (size_t)(he - hp);
	if (hlen == 0) {
		*err = xstrdup("URL has no host");
		return -1;
	}
	if (hlen >= sizeof(t->host)) {
		*err = xstrdup("URL host is too long");
		return -1;
	}
	memcpy(t->host, hp, hlen);
	t->host[hlen] = '\0';
	if (*v6literal) {
		struct in6_addr a6;
		if (inet_pton(AF_INET6, t->host, &a6) != 1) {
			*err = xstrdup("URL has a malformed IPv6 literal");
			return -1;
		}
	} else {
		for (i = 0; i < hlen; i++)
			if (!is_host_char((unsigned char)t->host[i])) {
				*err = xstrdup("URL host contains an invalid "
				    "character");
				return -1;
			}
	}
	if (rest < ae) {
		const char *p;

		if (*rest != ':' || rest + 1 == ae || ae - (rest + 1) > 5) {
			*err = xstrdup("URL has a malformed port");
			return -1;
		}
		port = 0;
		for (p = rest + 1; p < ae; p++) {
			if (!isdigit((unsigned char)*p)) {
				*err = xstrdup("URL has a malformed port");
				return -1;
			}
			port = port * 10 + (*p - '0');
		}
		if (port < 1 || port > 65535) {
			*err = xstrdup("URL port must be between 1 and 65535");
			return -1;
		}
	}
	t->port = (int)port;
	return 0;
}

/*
 * Cross-check our reading with libcurl's URL parser, which is what the
 * transfer will use: any disagreement about host or port is refused.
 */
static int
curl_agrees(const char *url, const struct outbound_target *t, bool v6literal,
    char **err)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *scheme = NULL;
	int rc = -1;

	if (u == NULL) {
		*err = xstrdup("out of memory parsing URL");
		return -1;
	}
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) !=
	    CURLUE_OK) {
		*err = xstrdup("URL is malformed");
		goto cleanup;
	}
	if (strcasecmp(scheme, "https") != 0 || atoi(port) != t->port)
		goto ambiguous;
	if (v6literal) {
		struct in6_addr a, b;
		size_t n = strlen(host);
		char inner[256];

		if (n < 3 || host[0] != '[' || host[n - 1] != ']' ||
		    n - 2 >= sizeof(inner))
			goto ambiguous;
		memcpy(inner, host + 1, n - 2);
		inner[n - 2] = '\0';
		if (inet_pton(AF_INET6, inner, &a) != 1 ||
		    inet_pton(AF_INET6, t->host, &b) != 1 ||
		    memcmp(&a, &b, sizeof(a)) != 0)
			goto ambiguous;
	} else if (strcasecmp(host, t->host) != 0) {
		goto ambiguous;
	}
	rc = 0;
	goto cleanup;
ambiguous:
	*err = xstrdup("URL is ambiguous (unusual host or port notation)");
cleanup:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

static void
sockaddr_to_oaddr(const struct sockaddr *sa, struct oaddr *a)
{
	memset(a, 0, sizeof(*a));
	a->family = sa->sa_family;
	if (sa->sa_family == AF_INET)
		memcpy(a->b,
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
		    4);
	else
		memcpy(a->b,
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		    16);
}

int
outbound_check_url(const struct config *cfg, const char *url,
    struct outbound_target *t, char **err)
{
	struct addrinfo hints, *res = NULL, *ai;
	bool v6literal, found = false;
	int gai, rc = -1;

	*err = NULL;
	memset(t, 0, sizeof(*t));
	if (parse_url(url, t, &v6literal, err) < 0)
		goto cleanup;
	if (curl_agrees(url, t, v6literal, err) < 0)
		goto cleanup;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (v6literal)
		hints.ai_flags = AI_NUMERICHOST;
	gai = getaddrinfo(t->host, NULL, &hints, &res);
	if (gai != 0) {
		*err = xasprintf("URL host %s does not resolve: %s", t->host,
		    gai_strerror(gai));
		goto cleanup;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		struct oaddr a;
		const char *why;
		char text[INET6_ADDRSTRLEN];

		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		sockaddr_to_oaddr(ai->ai_addr, &a);
		inet_ntop(a.family, a.b, text, sizeof(text));
		why = a.family == AF_INET ? classify_v4(a.b) : classify_v6(a.b);
		if (why != NULL && !allowed(cfg, &a)) {
			*err = xasprintf("URL host resolves to a %s address %s",
			    why, text);
			goto cleanup;
		}
		if (!found) {
			snprintf(t->addr, sizeof(t->addr), "%s", text);
			found = true;
		}
	}
	if (!found) {
		*err = xasprintf("URL host %s has no IPv4 or IPv6 address",
		    t->host);
		goto cleanup;
	}
	if (v6literal)
		t->resolve[0] = '\0';
	else if (strchr(t->addr, ':') != NULL)
		snprintf(t->resolve, sizeof(t->resolve), "%s:%d:[%s]", t->host,
		    t->port, t->addr);
	else
		snprintf(t->resolve, sizeof(t->resolve), "%s:%d:%s", t->host,
		    t->port, t->addr);
	rc = 0;
cleanup:
	if (res != NULL)
		freeaddrinfo(res);
	if (rc < 0)
		memset(t, 0, sizeof(*t));
	return rc;
}

/* Refuse to open a socket to any address but the checked one. */
static curl_socket_t
outbound_opensocket(void *clientp, curlsocktype purpose,
    struct curl_sockaddr *address)
{
	const struct outbound_target *t = clientp;
	struct sockaddr_storage ss;
	struct oaddr got, want;
	curl_socket_t fd;

	memset(&want, 0, sizeof(want));
	if (inet_pton(AF_INET, t->addr, want.b) == 1)
		want.family = AF_INET;
	else if (inet_pton(AF_INET6, t->addr, want.b) == 1)
		want.family = AF_INET6;
	if (purpose != CURLSOCKTYPE_IPCXN || want.family == 0 ||
	    address->addrlen > sizeof(ss) ||
	    (address->family != AF_INET && address->family != AF_INET6))
		goto refuse;
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, &address->addr, address->addrlen);
	sockaddr_to_oaddr((const struct sockaddr *)&ss, &got);
	if (got.family != want.family ||
	    memcmp(got.b, want.b, got.family == AF_INET ? 4 : 16) != 0)
		goto refuse;
	fd = socket(address->family, address->socktype, address->protocol);
	return fd < 0 ? CURL_SOCKET_BAD : fd;
refuse:
	log_kv(LOG_WARN, "outbound_refused",
	    "connection to an address other than the checked one refused",
	    "host", t->host, NULL);
	return CURL_SOCKET_BAD;
}

static size_t
outbound_discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	return size * nmemb;
}

void
outbound_curl_setup(const struct config *cfg, CURL *h,
    const struct outbound_target *t, long timeout_s,
    struct curl_slist **resolve_list)
{
	char ua[64], entry[sizeof(t->resolve) + 1];

	snprintf(ua, sizeof(ua), "instag-agent/%s", version_string());
	*resolve_list = NULL;
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (cfg != NULL && cfg->outbound_ca_file != NULL &&
	    cfg->outbound_ca_file[0] != '\0')
		curl_easy_setopt(h, CURLOPT_CAINFO, cfg->outbound_ca_file);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	if (t->resolve[0] != '\0') {
		/*
		 * "+" (curl >= 7.75) lets the entry expire from the multi
		 * handle's DNS cache like a looked-up one instead of staying
		 * for the handle's lifetime; the open-socket check still holds
		 * if it expired before the connect.
		 */
#if LIBCURL_VERSION_NUM >= 0x074b00
		snprintf(entry, sizeof(entry), "+%s", t->resolve);
#else
		snprintf(entry, sizeof(entry), "%s", t->resolve);
#endif
		*resolve_list = curl_slist_append(NULL, entry);
		if (*resolve_list == NULL) {
			log_msg(LOG_ERROR, "out_of_memory",
			    "curl_slist_append");
			abort();
		}
		curl_easy_setopt(h, CURLOPT_RESOLVE, *resolve_list);
	}
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, outbound_opensocket);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, (void *)t);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(h, CURLOPT_USERAGENT, ua);	/* curl copies it */
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, outbound_discard);
}
