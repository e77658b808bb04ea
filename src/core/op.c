/* SPDX-License-Identifier: MIT */
/*
 * op: operation errors (see op.h).
 */
#include "auto-config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/op.h"
#include "lib/strbuf.h"

void
op_error_set(struct op_error *e, const char *code, const char *fmt, ...)
{
	va_list ap;
	struct strbuf sb = SB_INIT;

	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	free(e->message);
	e->code = code;
	e->category = errcode_category(code);
	e->message = sb_take(&sb);
}

void
op_error_clear(struct op_error *e)
{
	free(e->message);
	memset(e, 0, sizeof(*e));
}
