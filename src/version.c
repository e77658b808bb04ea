#include "auto-config.h"

#include "version.h"

const char *
version_string(void)
{
	return PACKAGE_VERSION;
}
