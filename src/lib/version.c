/* SPDX-License-Identifier: MIT */
#include "auto-config.h"

#include "lib/version.h"

const char *
version_string(void)
{
	return PACKAGE_VERSION;
}
