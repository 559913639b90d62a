/* smtp_cmd.c - stub, replaced by the real module */
#include "smtp_cmd.h"
