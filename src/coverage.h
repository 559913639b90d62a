/*
 * coverage.h - coverage builds: flush gcov data before _exit()
 *
 * Session processes (and the detaching parent) end with _exit(), which
 * skips the atexit handlers that write gcov's .gcda files, so the code
 * they run would look unexecuted. With -DSMTPIPE_COVERAGE=ON (CMake
 * defines SMTPIPE_COVERAGE and compiles with --coverage) every _exit()
 * in a file that includes this header, last, first dumps the counters
 * (__gcov_dump, from libgcov). In every other build it is empty.
 */
#ifndef SMTPIPE_COVERAGE_H
#define SMTPIPE_COVERAGE_H

#ifdef SMTPIPE_COVERAGE
#include <unistd.h> /* declared before the macro below renames the calls */

void __gcov_dump(void);

/* coverage_exit - the status is computed first (it may run a whole
 * session), then the counters are written, then the real _exit() */
__attribute__((noreturn)) static inline void coverage_exit(int status)
{
	__gcov_dump();
	_exit(status);
}
#define _exit(status) coverage_exit(status)
#endif

#endif
