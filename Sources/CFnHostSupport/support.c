/* CFnHostSupport is header-only; this file makes it a C target. */
#include "fnhost_support.h"
