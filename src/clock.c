/*
 * clock.c - the one clock of smtpipe's deadlines and schedules
 *
 * See clock.h for why CLOCK_BOOTTIME.
 */
#include "clock.h"

#include <errno.h>
#include <time.h>

/* clock_now_ms - see clock.h */
long long clock_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* clock_sleep_until - see clock.h */
void clock_sleep_until(long long ms)
{
	struct timespec until = {ms / 1000, (ms % 1000) * 1000000L};
	while (clock_nanosleep(CLOCK_BOOTTIME, TIMER_ABSTIME, &until, NULL) == EINTR)
		;
}
