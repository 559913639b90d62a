/* deliver_mbox.c - interim: mailbox delivery is being written */
#include "deliver_mbox.h"

#include <stdio.h>

int deliver_mbox_check(const char *path, char *err, size_t errlen)
{
	snprintf(err, errlen, "mailbox delivery is not available in this build yet");
	return -1;
}

void deliver_mbox_run(const char *path, const struct delivery *d, struct spool *sp,
		      struct delivery_result *r)
{
	r->code = 451;
	snprintf(r->text, sizeof(r->text), "4.3.0 mailbox delivery not available");
}
