/* session.c - stub, replaced by the real module */
#include "session.h"
