/* tls.c - stub, replaced by the real module */
#include "tls.h"
