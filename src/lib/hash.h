/* SPDX-License-Identifier: MIT */
/*
 * hash: FNV-1a, for the in-memory hash tables keyed by task id; and the
 * one mapping from a JWT sub to the name of that owner's directories.
 */
#ifndef IA_HASH_H
#define IA_HASH_H

#include <stdint.h>

/* 32-bit FNV-1a of the NUL-terminated string s. */
uint32_t hash_fnv1a(const char *s);

#define HASH_OWNER_DIR_LEN (2 + 32 + 1)
/*
 * An owner's directory name: "u-" and the first 32 hex digits of
 * SHA-256(sub), into out.  Safe as a path component whatever sub holds;
 * the same everywhere (pods, the agent's asset store), so it must never
 * change.
 */
void hash_owner_dir(const char *sub, char out[HASH_OWNER_DIR_LEN]);

#endif
