/*
 * cli.h — what the lmrsecctl commands share: global options, exit codes,
 * error lines, the connection to the agent (DESIGN §5).
 */
#ifndef LMRSEC_CLI_H
#define LMRSEC_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "lmrsec.h"

/* DESIGN §5 */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAILED = 1,		/* the agent or SIP said no */
	CLI_EXIT_USAGE = 2,
	CLI_EXIT_UNREACHABLE = 3,	/* connecting to the agent failed */
	CLI_EXIT_TIMEOUT = 4,
};

#define CLI_STATUS_TIMEOUT_MS	5000
#define CLI_SEND_TIMEOUT_MS	30000
/* Connecting and subscribing in `receive`, and each ACK/NACK. */
#define CLI_REQUEST_TIMEOUT_MS	5000

struct cli {
	const char *prog;		/* "lmrsecctl" */
	const char *command;		/* for error lines; NULL before it is known */
	const char *socket_path;	/* NULL: lmrsec_default_path() */
	bool json;
};

/* Long options every command accepts too, so the global ones may follow
 * the command name: `lmrsecctl status --json`. */
enum cli_global_opt {
	CLI_OPT_SOCKET = 0x100,
	CLI_OPT_JSON,
	CLI_OPT_VERSION,
	CLI_OPT_COMMAND_BASE = 0x200,	/* first value for a command's own options */
};

#define CLI_GLOBAL_LONG_OPTIONS \
	{ "socket", required_argument, NULL, CLI_OPT_SOCKET }, \
	{ "json", no_argument, NULL, CLI_OPT_JSON }, \
	{ "help", no_argument, NULL, 'h' }

#define CLI_GLOBAL_HELP \
	"  --socket PATH   the agent's socket (default: $LMRSEC_SOCKET, else\n" \
	"                  $XDG_RUNTIME_DIR/lmrsec/agent.sock when not root,\n" \
	"                  else /run/lmrsec/agent.sock)\n" \
	"  --json          machine-readable output\n" \
	"  -h, --help      this text\n"

/* getopt_long() over a command's argv (argv[0] = the command name) with
 * opterr off; returns the option, -1 at the end, or '?' after printing a
 * usage line for an unknown option or a missing value. */
int cli_getopt(struct cli *cli, int argc, char **argv, const char *shortopts,
	       const struct option *longopts);

/* Applies --socket / --json met among a command's options.  true if opt
 * was one of them. */
bool cli_global_option(struct cli *cli, int opt, const char *arg);

/* "lmrsecctl: COMMAND: message" on stderr. */
void cli_error(const struct cli *cli, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* As cli_error(), plus a pointer to --help; returns CLI_EXIT_USAGE. */
int cli_usage_error(const struct cli *cli, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Replaces control characters in s (text from the agent or the SIP
 * network) with '?' so a human-readable line cannot be forged or garbled
 * on a terminal; returns s.  JSON output escapes instead. */
char *cli_scrub(char *s);

/* Reports a library error (the agent's own text when it sent one) and
 * returns the exit code it maps to. */
int cli_fail(const struct cli *cli, const struct lmrsec *c, int err,
	     const char *what);
enum cli_exit cli_exit_for(int err);

/* --timeout S: seconds, decimals allowed, > 0.  0, or CLI_EXIT_USAGE after
 * saying what is wrong. */
int cli_parse_timeout(const struct cli *cli, const char *arg, int *timeout_ms);
/* A positive integer option value.  0 or -EINVAL. */
int cli_parse_count(const char *arg, uint64_t *count);

/* Microseconds since the epoch as ISO 8601 UTC with microseconds,
 * "2024-05-01T12:00:00.123456Z". */
#define CLI_TIME_MAX 40
void cli_format_time(uint64_t time_us, char out[CLI_TIME_MAX]);

/* Monotonic deadlines, so a command's steps share its one --timeout. */
int64_t cli_deadline(int timeout_ms);
int cli_time_left(int64_t deadline);

/* SIGINT and SIGTERM set a flag instead of killing (no SA_RESTART, so a
 * library wait returns -EINTR); SIGPIPE is ignored. */
void cli_catch_stop_signals(void);
bool cli_stop_requested(void);

/* Connects to the agent; on failure prints why and returns the exit code
 * (3 unreachable, 4 timeout, 1 otherwise), else 0. */
int cli_connect(const struct cli *cli, int timeout_ms, struct lmrsec **out);

/* Takes the next item of a stream (an event, a trace message) within
 * wait_ms and prints it: 0, -ETIMEDOUT or -EINTR when none came, or the
 * library's error. */
typedef int (*cli_stream_next_fn)(const struct cli *cli, struct lmrsec *c, int wait_ms);

/* What `monitor` and `trace` take: --count N, --timeout S. */
struct cli_stream_args {
	uint64_t count;		/* 0: no count */
	int timeout_ms;		/* -1: run until stopped */
};

/* Parses a stream command's options into a (print_usage() for --help: returns
 * -1); 0, or the exit code of a usage error. */
int cli_stream_parse(struct cli *cli, int argc, char **argv, void (*print_usage)(void),
		     struct cli_stream_args *a);

/* Runs a `monitor`/`trace` stream until a->count items (0: no limit), the
 * timeout (negative: none; exit 4 when it ends a counted stream early,
 * else 0), SIGINT/SIGTERM (0) or an error ("lmrsecctl: CMD: ENDED: why"). */
int cli_stream(const struct cli *cli, struct lmrsec *c, const struct cli_stream_args *a,
	       cli_stream_next_fn next, const char *ended);

/* A stream command (`monitor`, `trace`) from its parts. */
struct cli_stream_command {
	void (*print_usage)(void);
	int (*start)(struct lmrsec *c, int timeout_ms);	/* lmrsec_monitor, lmrsec_trace */
	const char *refused;		/* error context when start fails */
	cli_stream_next_fn next;
	const char *ended;		/* error context when the stream fails */
};

/* Options, connection, start, then cli_stream(); the exit code. */
int cli_stream_command(struct cli *cli, int argc, char **argv,
		       const struct cli_stream_command *sc);

int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_send(struct cli *cli, int argc, char **argv);
int cmd_receive(struct cli *cli, int argc, char **argv);
int cmd_monitor(struct cli *cli, int argc, char **argv);
int cmd_queue(struct cli *cli, int argc, char **argv);
int cmd_credentials(struct cli *cli, int argc, char **argv);
int cmd_trace(struct cli *cli, int argc, char **argv);
int cmd_log_level(struct cli *cli, int argc, char **argv);

#endif
