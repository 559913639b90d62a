/* smtp_io.c - stub, replaced by the real module */
#include "smtp_io.h"
