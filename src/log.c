/* log.c - stub, replaced by the real module */
#include "log.h"
