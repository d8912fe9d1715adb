/* CFnHostABI is the header include/fnhost.h; this file only checks that it compiles as C. */
#include "fnhost.h"
_Static_assert(FNHOST_ABI_VERSION == 1, "fnhost ABI version");
