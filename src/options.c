/* options.c - stub, replaced by the real module */
#include "options.h"
