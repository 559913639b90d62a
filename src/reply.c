/* reply.c - stub, replaced by the real module */
#include "reply.h"
