/* SPDX-License-Identifier: MIT */
/* uuid: random (version 4) UUIDs from getrandom(2). */
#ifndef IA_UUID_H
#define IA_UUID_H

#include <stdbool.h>

#define UUID_STR_LEN 37	/* 36 characters and NUL */

/* Write a new lower-case UUID v4 into out. */
void uuid_v4(char out[UUID_STR_LEN]);
/* True when s is a canonical UUID (any version, either case). */
bool uuid_valid(const char *s);

#endif
