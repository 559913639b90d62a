/* deliver_pipe.c - stub, replaced by the real module */
#include "deliver_pipe.h"
