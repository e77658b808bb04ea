/* SPDX-License-Identifier: MIT */
/* version: the agent's version string, from configure (PACKAGE_VERSION). */
#ifndef IA_VERSION_H
#define IA_VERSION_H
const char *version_string(void);
#endif
