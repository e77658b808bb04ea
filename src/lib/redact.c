/* SPDX-License-Identifier: MIT */
/* redact: text made fit to relay; see redact.h. */
#include "auto-config.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "lib/redact.h"
#include "lib/strbuf.h"

#define REPL "\xef\xbf\xbd"	/* U+FFFD */

static bool
token_char(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
	    c == '+' || c == '/' || c == '=';
}

/* Bytes of the valid UTF-8 sequence at p (at most n), 0 when invalid. */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	size_t k, i;
	unsigned int cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		k = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		k = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		k = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (k > n)
		return 0;
	for (i = 1; i < k; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((k == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (k == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return k;
}

char *
redact_text(const char *buf, size_t len, const char *secret)
{
	struct strbuf sb = SB_INIT;
	const unsigned char *p = (const unsigned char *)buf;
	size_t sl = secret ? strlen(secret) : 0, i = 0, k;

	sb_adds(&sb, "");
	while (i < len) {
		if (sl > 0 && len - i >= sl && memcmp(p + i, secret, sl) == 0) {
			sb_adds(&sb, REDACT_MARK);
			i += sl;
			continue;
		}
		if (len - i > 7 && strncasecmp((const char *)p + i, "Bearer ",
		    7) == 0 && token_char(p[i + 7])) {
			sb_adds(&sb, "Bearer " REDACT_MARK);
			for (i += 7; i < len && token_char(p[i]); i++)
				;
			continue;
		}
		if (len - i >= 20 && memcmp(p + i, "rpa_", 4) == 0 &&
		    (i == 0 || !token_char(p[i - 1]))) {
			for (k = i + 4; k < len && (isalnum(p[k]) ||
			    p[k] == '_'); k++)
				;
			if (k - i - 4 >= 16) {
				sb_adds(&sb, REDACT_MARK);
				i = k;
				continue;
			}
		}
		if (p[i] == '\r') {
			sb_addc(&sb, '\n');
			i++;
			continue;
		}
		if ((p[i] < 0x20 && p[i] != '\n' && p[i] != '\t') ||
		    p[i] == 0x7f) {
			sb_adds(&sb, REPL);
			i++;
			continue;
		}
		k = utf8_len(p + i, len - i);
		if (k == 0) {
			sb_adds(&sb, REPL);
			i++;
			continue;
		}
		sb_addn(&sb, (const char *)p + i, k);
		i += k;
	}
	return sb_take(&sb);
}
