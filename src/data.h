/*
 * data.h - the DATA decoder: dot-unstuffing, CRLF to LF, end detection
 *
 * Invariant 3: only CRLF "." CRLF ends the message. A line starts only
 * after CRLF, so "\n.\n", "\r.\r", "\n.\r\n" and the like are content
 * and never end the message or start a second one (SMTP smuggling).
 * CRLF becomes LF; a bare CR or bare LF is kept as it is. The decoder
 * is pure and streaming: it works on blocks of any size, keeps its
 * place across blocks, and never writes more than len+2 bytes of output
 * per call. Past max_size, or past a line longer than max_line, it
 * stops writing output but keeps reading to the end, so the session
 * can answer 552 or 500 in step with the client (SMTP has no reply in
 * the middle of DATA) and spools nothing it will refuse; the session
 * bounds how far it reads past max_size (--max-discard).
 * The size is RFC 1870's: the octets of the text with CRLF counted as
 * two, without the doubled (transparency) dots and the final ".".
 * A line's length leaves out its CRLF and the transparency dot (RFC
 * 5321 4.5.3.1.6).
 */
#ifndef SMTPIPE_DATA_H
#define SMTPIPE_DATA_H

#include <stdbool.h>
#include <stddef.h>

struct data_decoder {
	int state;
	size_t size;     /* RFC 1870 size so far (counting past max_size) */
	size_t max_size; /* 0: no limit */
	size_t line_len; /* octets in the current line */
	size_t max_line; /* longest allowed line without its CRLF; 0: no limit */
	size_t longest;  /* longest line seen */
	unsigned long bare_lf;
	bool too_big;
	bool line_too_long;
	bool done;
};

void data_decoder_init(struct data_decoder *d, size_t max_size, size_t max_line);
/* data_decode - decode in[0..len) into out (room for len+2 bytes);
 * returns the number of input bytes consumed (less than len only when
 * the end of data was found: d->done), *out_len the bytes written */
size_t data_decode(struct data_decoder *d, const char *in, size_t len, char *out, size_t *out_len);

#endif
