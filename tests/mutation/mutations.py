"""mutations.py - the deliberate bugs the suite must catch (tests/mutation/run.py)

Each mutation names a file under the source tree, an exact snippet that
must occur in it exactly once, the text that replaces it, the promise
of README.md / DESIGN.md it breaks, and the tests that must catch it:
"unit.test_x" runs that ctest test; "test_x.py" runs that integration
file; "test_x.py:Class.test_y" runs one case of it (small selections
keep a full run short). "also" lists more (file, snippet, replacement)
edits made together with the first, for a promise the code holds twice.
When a refactoring changes a snippet, run.py
says "no longer applies" and counts it as a failure: update the
snippet here together with the code.
"""

MUTATIONS = [
    # --- the five of issue 20 ------------------------------------------------
    dict(file="src/spool.c",
         find="\t\treturn pos < 0 ? (size_t)-1 : sp->size - (size_t)pos;",
         repl="\t\treturn pos < 0 ? (size_t)-1 : 0;",
         promise="a command that exits 0 without reading a spooled (>64 KiB) message gets 451",
         tests=["test_promises.py:HandedOnWhole"]),
    dict(file="src/session.c",
         find="\t*spool_err = s->sp.error;",
         repl="\t*spool_err = 0;",
         promise="a spool write error (full --spool-dir) gets 452, never 250",
         tests=["test_promises.py:FullSpool"]),
    dict(file="src/auth.c",
         find="\td |= ct_equal(s->password, s->password_len, pass, plen);",
         repl="\td |= (plen != s->password_len || memcmp(s->password, pass, plen) != 0);",
         promise="secrets are compared in constant time",
         tests=["unit.test_auth"]),
    dict(file="src/data.c",
         find="\tif (d->max_size && d->size > d->max_size)\n\t\td->too_big = true;",
         repl="\tif (d->max_size && d->size > d->max_size + 1)\n\t\td->too_big = true;",
         promise="--max-message-size: max octets (RFC 1870) pass, max+1 get 552 5.3.4",
         tests=["test_promises.py:Bounds.test_message_size_max_and_max_plus_one_as_rfc1870_counts"]),
    dict(file="src/deliver_pipe.c",
         find="} else if (st == 68 || st == 69 || st == 71 || st == 75) {",
         repl="} else if (st >= 68 && st <= 77 && st != 78) {",
         promise="exit statuses other than 0, 68, 69, 71, 75 are 554 (70, 72-74, 76, 77 too)",
         tests=["unit.test_contract"]),

    # --- invariant 1: a 250 means handed on whole --------------------------------
    dict(file="src/spool.c",
         find="\tif (ioctl(fd, FIONREAD, &left) < 0)\n\t\treturn (size_t)-1;\n\treturn (size_t)left;",
         repl="\tif (ioctl(fd, FIONREAD, &left) < 0)\n\t\treturn (size_t)-1;\n\treturn 0;",
         promise="a command that exits 0 without reading a small (in-memory) message gets 451",
         tests=["test_delivery.py:TimeLimit.test_command_that_does_not_read_stdin"]),
    dict(file="src/deliver_pipe.c",
         find="\t\t\tr->code = 451;\n\t\t\tsnprintf(r->text, sizeof(r->text),\n"
              "\t\t\t         \"4.3.0 Temporary failure (delivery command exit %d)\", st);",
         repl="\t\t\tr->code = 250;\n\t\t\tsnprintf(r->text, sizeof(r->text),\n"
              "\t\t\t         \"4.3.0 Temporary failure (delivery command exit %d)\", st);",
         promise="exit 68, 69, 71, 75 are 451, never 250",
         tests=["unit.test_contract"]),
    dict(file="src/deliver_pipe.c",
         find="\t\tr->signal = WTERMSIG(wstatus);\n\t\tr->code = 451;",
         repl="\t\tr->signal = WTERMSIG(wstatus);\n\t\tr->code = 554;",
         promise="a command killed by a signal is 451",
         tests=["unit.test_contract"]),
    dict(file="src/deliver_mbox.c",
         find="\tif (fsync(o.fd) < 0) {\n\t\terr = errno;",
         repl="\tif (fsync(o.fd) < 0) {\n\t\terr = 0;",
         promise="a 250 for an mbox append means it was fsynced",
         tests=["test_mockmta.py:Mailbox.test_failed_fsync_takes_the_message_back_out"]),
    dict(file="src/deliver_mbox.c",
         find="\t\tif (ftruncate(o.fd, size) == 0)\n\t\t\tfsync(o.fd);",
         repl="\t\tif (0)\n\t\t\tfsync(o.fd);",
         promise="a failed mbox append is truncated back: no reader sees a torn message",
         tests=["test_mockmta.py:Mailbox.test_full_disk_restores_the_mailbox"]),

    # --- invariant 2: nothing partial ------------------------------------------------
    dict(file="src/session.c",
         find="\t\t\t        \"event=disconnect phase=data size=%zu nothing-delivered\", d->size);\n"
              "\t\t\treturn EXIT_KIND_FAILURE;",
         repl="\t\t\t        \"event=disconnect phase=data size=%zu nothing-delivered\", d->size);\n"
              "\t\t\td->done = true;\n\t\t\tbreak;",
         promise="a client that disconnects mid-DATA causes no delivery",
         tests=["test_data.py:Data.test_disconnect_mid_data_delivers_nothing"]),
    dict(file="src/session.c",
         find="\t\t\tengine_timeout(&s->e);\n\t\t\treturn EXIT_KIND_TIMEOUT;",
         repl="\t\t\tengine_timeout(&s->e);\n\t\t\td->done = true;\n\t\t\tbreak;",
         promise="a client that times out mid-DATA causes no delivery",
         tests=["test_hostile.py:Hostile.test_35_slow_data_client_timed_out"]),

    # --- invariant 3: only CRLF.CRLF ends DATA -------------------------------------
    dict(file="src/data.c",
         find="\t\t\t\t\tline_grew(d, n);\n\t\t\t\t\temit(d, out, &o, p, n + 1, n + 1);\n"
              "\t\t\t\t\td->bare_lf++;",
         repl="\t\t\t\t\tline_grew(d, n);\n\t\t\t\t\temit(d, out, &o, p, n + 1, n + 1);\n"
              "\t\t\t\t\td->bare_lf++;\n\t\t\t\t\td->state = DS_LINE_START;",
         promise="a bare LF never starts a line, so LF.LF never ends DATA",
         tests=["test_data.py:Data.test_smuggling_sequences"]),
    dict(file="src/data.c",
         find="\t\t\t\tline_grew(d, 1);\n\t\t\t\temit(d, out, &o, \"\\r\", 1, 1); /* bare CR: kept */\n"
              "\t\t\t\td->state = DS_TEXT;",
         repl="\t\t\t\tline_grew(d, 1);\n\t\t\t\temit(d, out, &o, \"\\r\", 1, 1); /* bare CR: kept */\n"
              "\t\t\t\td->state = DS_LINE_START;",
         promise="a bare CR never starts a line, so CR.CR never ends DATA",
         # DS_CR is the CR at the end of a read block: the decoder's unit
         # test splits every sequence at every offset
         tests=["unit.test_data", "test_data.py:Data.test_smuggling_sequences"]),
    dict(file="src/data.c",
         find="\t\t\t\td->state = DS_TEXT; /* the dot is dropped */",
         repl="\t\t\t\td->state = DS_TEXT;\n\t\t\t\temit(d, out, &o, \".\", 1, 1);",
         promise="one leading dot is removed from each line (RFC 5321 4.5.2)",
         tests=["test_data.py:Data.test_dot_unstuffing"]),

    # --- invariant 4: no client byte reaches a shell or becomes an option ------------
    dict(file="src/smtp_cmd.c",
         find="\tif (n > 0 && a[0] == '-')\n\t\treturn PATH_REFUSED;",
         repl="\tif (n > 1 && a[0] == '-' && a[1] == '-')\n\t\treturn PATH_REFUSED;",
         promise="an address starting with '-' is refused (553) and never becomes an option",
         tests=["test_hostile.py:Hostile.test_03_leading_dash_recipient"]),
    dict(file="src/smtp_cmd.c",
         find="\t\tif (c < 0x20 || c == 0x7f)\n\t\t\treturn PATH_REFUSED;",
         repl="\t\tif (c < 0x09)\n\t\t\treturn PATH_REFUSED;",
         promise="an address holding control characters is refused (553)",
         tests=["test_hostile.py:Hostile.test_05_control_characters"]),
    dict(file="src/cmd_template.c",
         find="\t\tif (t->shell) {\n\t\t\tcmd_buf_str(&script, t->argv[0]);",
         repl="\t\tif (t->shell) {\n\t\t\tcmd_buf_str(&script, t->argv[0]);\n"
              "\t\t\tfor (size_t k = 0; k < nrcpt; k++) {\n\t\t\t\tcmd_buf_str(&script, \" \");\n"
              "\t\t\t\tcmd_buf_str(&script, rcpts[k]);\n\t\t\t}",
         promise="with a shell template, recipients reach the shell only as positional parameters",
         tests=["test_hostile_addresses.py"]),
    dict(file="src/listener.c",
         find="\tint fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);",
         repl="\tint fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, 0);",
         # held twice: close-on-exec, and child.c closes all from 3 up
         also=[("src/child.c", "\tposix_spawn_file_actions_addclosefrom_np(&fa, 3);\n", "")],
         promise="only descriptors 0-2 reach a delivery command",
         tests=["test_smtp_basic.py:Basic.test_delivery_command_sees_only_std_fds"]),

    # --- invariant 5: every input and wait bounded -----------------------------------
    dict(file="src/engine.c",
         find="\tif (e->tx.nrcpt >= e->cfg->max_recipients) {",
         repl="\tif (e->tx.nrcpt > e->cfg->max_recipients) {",
         promise="--max-recipients: max pass, max+1 get 452 4.5.3",
         tests=["test_promises.py:Bounds.test_recipients_max_and_max_plus_one"]),
    dict(file="src/data.c",
         find="\t\t\t\td->state = DS_DOT;\n\t\t\t\tp++;",
         repl="\t\t\t\td->state = DS_DOT;\n\t\t\t\tline_grew(d, 1);\n\t\t\t\tp++;",
         promise="--max-line-length does not count the transparency dot (RFC 5321 4.5.3.1.6)",
         tests=["test_promises.py:Bounds.test_stuffed_dot_line_not_counted"]),
    dict(file="src/data.c",
         find="\tif (d->max_line && d->line_len > d->max_line)",
         repl="\tif (d->max_line && d->line_len > d->max_line + 1)",
         promise="--max-line-length: max octets pass, max+1 get 500 5.5.2",
         tests=["test_promises.py:Bounds.test_text_line_max_and_max_plus_one"]),
    dict(file="src/bounds.h",  # engine.c and session.c's reader both check it
         find="#define BOUND_COMMAND_LINE 512",
         repl="#define BOUND_COMMAND_LINE 513",
         promise="command lines are 512 octets at most (500 5.5.2)",
         tests=["test_promises.py:Bounds.test_command_line_max_and_max_plus_one"]),
    dict(file="src/engine.c",
         find="\tif (mp.size_given && mp.size > e->cfg->max_message_size)",
         repl="\tif (mp.size_given && mp.size > e->cfg->max_message_size + 1)",
         promise="MAIL SIZE= over --max-message-size gets 552 5.3.4",
         tests=["test_promises.py:Bounds.test_size_parameter_max_and_max_plus_one"]),
    dict(file="src/engine.c",
         find="\tif (e->cfg->max_errors && e->errors >= e->cfg->max_errors) {",
         repl="\tif (e->cfg->max_errors && e->errors > e->cfg->max_errors) {",
         promise="--max-errors client errors end the session with 421 4.7.0",
         tests=["test_hostile.py:Hostile.test_38_many_errors_end_the_session"]),
    dict(file="src/child.c",
         find="\tif (!exited) {\n\t\tkill(same_group ? pid : -pid, SIGKILL);",
         repl="\tif (!exited) {\n\t\t(void)same_group;",
         promise="a command over --delivery-timeout is killed: 451 4.4.7 in bounded time",
         tests=["test_delivery.py:TimeLimit.test_sleeping_command_is_killed_451"]),
    dict(file="src/child.c",
         find="\t} else if (!same_group && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {",
         repl="\t} else if (!same_group) {",
         promise="after exit 0 a command's background children are left alone, as msmtpd leaves them",
         tests=["test_delivery.py:TimeLimit.test_background_children_of_a_successful_command_live_on"]),
    dict(file="src/child.c",
         find="\t\tif (l->bytes + l->len >= BOUND_COMMAND_OUTPUT) {",
         repl="\t\tif (l->bytes + l->len >= 64 * BOUND_COMMAND_OUTPUT * 1024) {",
         promise="the command's output reaches the log bounded",
         tests=["unit.test_deliver_pipe"]),

    # --- invariant 6: every session its own process, all reaped ------------------------
    dict(file="src/listener.c",
         find="\twhile ((pid = waitpid(-1, &st, WNOHANG)) > 0) {",
         repl="\tif ((pid = waitpid(-1, &st, WNOHANG)) > 0) {",
         promise="the daemon reaps every session and leaves no zombies",
         tests=["test_listener.py:Listener.test_connection_flood_no_zombies_no_fd_leak"]),

    # --- invariant 7: STARTTLS discards plaintext and restarts -------------------------
    dict(file="src/smtp_io.c",
         find="void smtp_io_discard_input(struct smtp_io *io)\n{\n\tio->start = io->end = 0;",
         repl="void smtp_io_discard_input(struct smtp_io *io)\n{\n\t(void)io;",
         promise="plaintext pipelined after STARTTLS is discarded (RFC 3207, CVE-2011-0411)",
         tests=["test_tls_hostile.py:Hostile.test_plaintext_after_starttls_is_discarded"]),
    dict(file="src/engine.c",
         find="\ttx_reset(&e->tx);\n\te->state = STATE_CONNECTED;\n}",
         repl="\ttx_reset(&e->tx);\n}",
         promise="after the TLS handshake the session starts over (EHLO first)",
         tests=["test_tls_starttls.py:StartTLS.test_starttls_protocol_errors"]),

    # --- invariant 8: secrets ------------------------------------------------------------
    dict(file="src/session.c",
         find="\tlog_escape(user, sizeof(user), e->auth_user, e->auth_user_len);",
         repl="\tlog_escape(user, sizeof(user), e->auth_pass, e->auth_pass_len);",
         promise="secrets are never logged",
         tests=["test_auth.py:Auth.test_wrong_password_logged_not_leaked"]),
    dict(file="src/auth.c",
         find="\tfree(s->user);\n\tmemset(s, 0, sizeof(*s));",
         repl="\tfree(s->user);",
         promise="secrets are wiped on exit",
         tests=["unit.test_auth"]),
    dict(file="src/auth.c",
         find="\t\twant = earliest ? (next > earliest ? next : earliest) : slot + delay;\n\t} while",
         repl="\t\twant = earliest ? (next > earliest ? next : earliest) : slot;\n\t} while",
         promise="credential checks are at least one second apart across all sessions",
         tests=["unit.test_auth", "test_auth.py:Brake.test_failure_delays_other_sessions_not_mail"]),
    dict(file="src/session.c",
         find="\tauth_brake_wait();\n\tbool ok",
         repl="\tbool ok",
         promise="the brake holds AUTH, every AUTH (always under --inetd)",
         tests=["test_auth.py:Brake.test_inetd_always_delays"]),
    dict(file="src/session.c",
         find="\t\tenum engine_event ev = engine_line(&s.e, line, len, too_long);",
         repl="\t\tauth_brake_wait();\n\t\tenum engine_event ev = engine_line(&s.e, line, len, too_long);",
         promise="the brake holds only AUTH: greeting, EHLO and mail are never delayed",
         tests=["test_auth.py:Brake"]),

    # --- the suite's own promises: hostile cases assert, commands are checked --------
    dict(file="src/session.c",
         find="\t\t\tresult = !mid && st == SMTP_IO_EOF ? EXIT_KIND_OK : EXIT_KIND_FAILURE;",
         repl="\t\t\tif (mid)\n\t\t\t\t__builtin_trap();\n"
              "\t\t\tresult = !mid && st == SMTP_IO_EOF ? EXIT_KIND_OK : EXIT_KIND_FAILURE;",
         promise="the daemon survives any session; no hostile case crashes a session",
         tests=["test_hostile.py:Hostile.test_33_reset_by_peer"]),
    dict(file="src/session.c",
         find="\t\t\t        mid ? \" \" : \"\", mid ? mid : \"\");",
         repl="\t\t\t        \"\", \"\");",
         promise="a disconnect is logged in the state it happened",
         tests=["test_hostile.py:Hostile.test_32_disconnect_in_every_state"]),
    dict(file="src/cmd_template.c",
         find="\tconst char *from = sender[0] ? sender : \"MAILER-DAEMON\";",
         repl="\tconst char *from = sender[0] ? \"MAILER-DAEMON\" : sender;",
         promise="the first %F becomes the envelope sender",
         tests=["unit.test_deliver_pipe"]),

    # --- error paths a hostile machine takes ------------------------------------------
    dict(file="src/listener.c",
         find="\t\t\tlp->resume_ms = now + BOUND_ACCEPT_RETRY_MS;\n\t\t}\n\t\treturn;",
         repl="\t\t\tlp->resume_ms = now + BOUND_ACCEPT_RETRY_MS;\n\t\t}\n\t\texit(0);",
         promise="out of descriptors (EMFILE), the client waits in the backlog and is served",
         tests=["test_promises.py:ErrorPaths.test_accept_out_of_descriptors_waits_then_serves"]),
    dict(file="src/smtp_io.c",
         find="\t\t\tif ((*st = wait_fd(io, io->fd_out, POLLOUT, deadline)) == SMTP_IO_OK)",
         repl="\t\t\tif ((*st = SMTP_IO_ERROR) == SMTP_IO_OK)",
         promise="a full socket (EAGAIN) is waited for, within the reply deadline; no reply is lost",
         tests=["test_promises.py:ErrorPaths.test_client_that_does_not_read_its_replies"]),
    dict(file="src/tls.c",
         find="\t        : r == GNUTLS_E_AGAIN                  ? EAGAIN\n"
              "\t                                               : EIO;",
         repl="\t        : r == GNUTLS_E_AGAIN                  ? EAGAIN\n"
              "\t                                               : EAGAIN;",
         promise="a broken TLS record ends the session at once, nothing delivered",
         tests=["test_promises.py:ErrorPaths.test_broken_tls_record_mid_data_delivers_nothing"]),
]
