/* data.c - stub, replaced by the real module */
#include "data.h"
