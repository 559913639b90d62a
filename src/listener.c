/* listener.c - stub, replaced by the real module */
#include "listener.h"
