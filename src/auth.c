/* auth.c - stub, replaced by the real module */
#include "auth.h"
