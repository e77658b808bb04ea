/* SPDX-License-Identifier: MIT */
/* hash: FNV-1a, for the in-memory hash tables keyed by task id. */
#ifndef IA_HASH_H
#define IA_HASH_H

#include <stdint.h>

/* 32-bit FNV-1a of the NUL-terminated string s. */
uint32_t hash_fnv1a(const char *s);

#endif
