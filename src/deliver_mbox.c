/* deliver_mbox.c - stub, replaced by the real module */
#include "deliver_mbox.h"
