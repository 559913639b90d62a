/*
 * test_safe_file.c - safe_file_open on real files in a temporary
 *                    directory: what each rule refuses (with its fixed
 *                    reason and EPERM), what a failed open is called,
 *                    and what a good file gives back (a blocking
 *                    descriptor, its status)
 *
 * The owner rule needs a file of another user: as root the test makes
 * one (chown to nobody); as anyone else root's /etc/passwd serves,
 * under the rule that admits only our own files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safe_file.h"

static char dir[] = "/tmp/test_safe_file.XXXXXX";

static const struct safe_file_rules file_ours = {.one_link = true};
static const struct safe_file_rules file_or_root = {
    .root_may_own = true, .forbidden = S_IWOTH, .mode_why = "writable by every user"};
static const struct safe_file_rules dir_or_root = {.directory = true,
                                                   .root_may_own = true,
                                                   .forbidden = S_IWOTH,
                                                   .mode_why = "writable by every user"};

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

/* in_dir - name under the test's directory (in one of four buffers:
 * a call may take two of these) */
static const char *in_dir(const char *name)
{
	static char path[4][160];
	static unsigned next;
	char *p = path[next++ % 4];
	snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
	return p;
}

/* make_file - a regular file of ours with mode */
static void make_file(const char *name, mode_t mode)
{
	int fd = open(in_dir(name), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* The plants, each refused with its reason; errno is EPERM when the
 * open succeeded and a rule refused, the open's own errno otherwise. */
static void test_refused(void **state)
{
	(void)state;
	make_file("target", 0600);
	assert_int_equal(symlink(in_dir("target"), in_dir("symlink")), 0);
	assert_int_equal(mkfifo(in_dir("fifo"), 0600), 0);
	assert_int_equal(mkdir(in_dir("dir"), 0700), 0);
	assert_int_equal(link(in_dir("target"), in_dir("hardlink")), 0);
	make_file("open", 0602);
	assert_int_equal(mkdir(in_dir("opendir"), 0700), 0);
	assert_int_equal(chmod(in_dir("opendir"), 0777), 0);
	assert_int_equal(symlink(in_dir("dir"), in_dir("dirlink")), 0);
	static const struct {
		const char *name;
		int flags;
		const struct safe_file_rules *rules;
		const char *want;
		int want_errno;
	} cases[] = {
	    {"symlink", O_WRONLY | O_CREAT, &file_ours, "it is a symbolic link", ELOOP},
	    {"symlink", O_RDONLY, &file_or_root, "it is a symbolic link", ELOOP},
	    {"fifo", O_WRONLY | O_CREAT, &file_ours, "not a regular file", ENXIO},
	    {"fifo", O_RDONLY, &file_or_root, "not a regular file", EPERM},
	    {"dir", O_WRONLY | O_CREAT, &file_ours, "not a regular file", EISDIR},
	    {"dir", O_RDONLY, &file_or_root, "not a regular file", EPERM},
	    {"hardlink", O_WRONLY | O_CREAT, &file_ours, "it has more than one hard link", EPERM},
	    {"open", O_RDONLY, &file_or_root, "writable by every user", EPERM},
	    {"target", O_RDONLY, &dir_or_root, "not a directory", ENOTDIR},
	    {"opendir", O_RDONLY, &dir_or_root, "writable by every user", EPERM},
	    /* O_DIRECTORY answers ENOTDIR for a symbolic link */
	    {"dirlink", O_RDONLY, &dir_or_root, "it is a symbolic link", ENOTDIR},
	    {"missing", O_RDONLY, &file_or_root, "No such file or directory", ENOENT},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char why[96] = "";
		errno = 0;
		int fd = safe_file_open(AT_FDCWD, in_dir(cases[i].name), cases[i].flags, 0600,
		                        cases[i].rules, NULL, why, sizeof(why));
		int e = errno;
		if (fd >= 0)
			fail_msg("case %zu (%s): got descriptor %d, want -1", i, cases[i].name, fd);
		if (strcmp(why, cases[i].want) != 0 || e != cases[i].want_errno)
			fail_msg("case %zu (%s): got '%s' errno %d, want '%s' errno %d", i,
			         cases[i].name, why, e, cases[i].want, cases[i].want_errno);
	}
	struct stat st;
	assert_int_equal(stat(in_dir("target"), &st), 0);
	assert_int_equal(st.st_size, 0); /* nothing wrote through a plant */
}

/* A file of another user: refused by both rules; root's own file only
 * by the rule that admits ours alone. */
static void test_owner(void **state)
{
	(void)state;
	char why[96] = "";
	const char *foreign = "/etc/passwd"; /* root's: another user's unless we are root */
	if (geteuid() == 0) {
		make_file("nobodys", 0644);
		assert_int_equal(chown(in_dir("nobodys"), 65534, 65534), 0);
		foreign = in_dir("nobodys");
		int fd = safe_file_open(AT_FDCWD, foreign, O_RDONLY, 0, &file_or_root, NULL, why,
		                        sizeof(why));
		if (fd >= 0 || strcmp(why, "owned by another user") != 0)
			fail_msg("nobody's file, root allowed: got %d '%s', want refused", fd, why);
		make_file("roots", 0644);
		fd = safe_file_open(AT_FDCWD, in_dir("roots"), O_RDONLY, 0, &file_or_root, NULL,
		                    why, sizeof(why));
		if (fd < 0)
			fail_msg("root's file, root allowed: got '%s', want a descriptor", why);
		close(fd);
	}
	int fd = safe_file_open(AT_FDCWD, foreign, O_RDONLY, 0, &file_ours, NULL, why, sizeof(why));
	if (fd >= 0 || strcmp(why, "owned by another user") != 0 || errno != EPERM)
		fail_msg("%s, ours only: got %d '%s', want refused as another user's", foreign, fd,
		         why);
}

/* A good file: created with the mode, O_NONBLOCK cleared, close-on-exec,
 * the status given back; a good directory under a directory descriptor. */
static void test_good(void **state)
{
	(void)state;
	char why[96] = "";
	struct stat st;
	mode_t mask = umask(0);
	umask(mask);
	unlink(in_dir("new"));
	int fd = safe_file_open(AT_FDCWD, in_dir("new"), O_WRONLY | O_CREAT | O_APPEND, 0640,
	                        &file_ours, &st, why, sizeof(why));
	if (fd < 0)
		fail_msg("new file: got '%s', want a descriptor", why);
	int fl = fcntl(fd, F_GETFL);
	if ((fl & O_NONBLOCK) || !(fl & O_APPEND) || !(fcntl(fd, F_GETFD) & FD_CLOEXEC))
		fail_msg("new file: got flags %#x, want O_APPEND, no O_NONBLOCK, close-on-exec",
		         fl);
	if (!S_ISREG(st.st_mode) || (st.st_mode & 0777) != (0640 & ~mask))
		fail_msg("new file: got mode %o, want a regular file of mode 0640 less the umask",
		         (unsigned)st.st_mode);
	close(fd);
	int at = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(at >= 0);
	assert_int_equal(mkdir(in_dir("sub"), 0700), 0);
	fd = safe_file_open(at, "sub", O_RDONLY, 0, &dir_or_root, &st, why, sizeof(why));
	if (fd < 0 || !S_ISDIR(st.st_mode))
		fail_msg("directory under a descriptor: got %d '%s', want a directory", fd, why);
	close(fd);
	close(at);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_owner),
	    cmocka_unit_test(test_good),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
