/* engine.c - stub, replaced by the real module */
#include "engine.h"
