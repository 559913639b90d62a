/* secret.c - stub, replaced by the real module */
#include "secret.h"
