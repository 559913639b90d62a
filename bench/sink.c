/* sink.c - the benchmark's delivery command: read stdin to EOF, exit 0 */
#include <unistd.h>

/* main - drain stdin, succeed */
int main(void)
{
	static char buf[1 << 16];
	while (read(0, buf, sizeof(buf)) > 0)
		;
	return 0;
}
