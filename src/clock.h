/*
 * clock.h - the one clock of smtpipe's deadlines and schedules
 *
 * Milliseconds of CLOCK_BOOTTIME: monotonic (a change of the wall
 * clock moves no deadline), the same in every process of the machine
 * (the AUTH brake's schedule is written by one session and read by
 * another, auth.c), and counting the time the machine was suspended, so
 * that a deadline is real elapsed time. Every deadline a module computes
 * for child_wait() and every slot of the brake is on this clock.
 */
#ifndef SMTPIPE_CLOCK_H
#define SMTPIPE_CLOCK_H

/* clock_now_ms - the time now, in milliseconds */
long long clock_now_ms(void);
/* clock_sleep_until - sleep until clock_now_ms() reaches ms; a signal
 * does not cut the sleep short */
void clock_sleep_until(long long ms);

#endif
