/* spool.c - stub, replaced by the real module */
#include "spool.h"
