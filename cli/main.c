/*
 * main.c — lmrsecctl: global options, the command table, and what every
 * command shares (error lines, exit codes, connecting).  DESIGN §5.
 *
 *   lmrsecctl [--socket PATH] [--json] COMMAND [options]
 *
 * Global options may also follow the command name; each command's option
 * table includes them (CLI_GLOBAL_LONG_OPTIONS).
 */
#define _GNU_SOURCE

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

#include "cli.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define CLI_TIMEOUT_MAX_S	(INT_MAX / 1000)

struct command {
	const char *name;
	int (*run)(struct cli *cli, int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "status", cmd_status, "registration, spool, consumers and counters" },
	{ "send", cmd_send, "send a client-initiated message to the KMF" },
	{ "receive", cmd_receive, "take payloads as the consumer of LMR types" },
	{ "monitor", cmd_monitor, "stream the agent's events (metadata only)" },
	{ "queue", cmd_queue, "list the messages in the spool (metadata only)" },
	{ "credentials", cmd_credentials, "store or remove the SIP password (Secret Service)" },
	{ "trace", cmd_trace, "stream the SIP messages (bodies as type, size, SHA-256)" },
	{ "log-level", cmd_log_level, "show or change the agent's log level" },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	size_t i;

	fprintf(out,
		"Usage: lmrsecctl [--socket PATH] [--json] COMMAND [options]\n"
		"\n"
		"Talks to lmrsec-agent over its local socket.\n"
		"\n"
		"Commands:\n");
	for (i = 0; i < N_COMMANDS; i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out,
		"\n"
		"Options (also accepted after the command name):\n"
		CLI_GLOBAL_HELP
		"  --version       print the version and exit\n"
		"\n"
		"`lmrsecctl COMMAND --help` describes a command.\n"
		"Exit status: 0 success, 1 the operation failed (agent or SIP said no),\n"
		"2 usage error, 3 agent not reachable, 4 timeout.\n");
}

/* "lmrsecctl: COMMAND: message", without the line end. */
static void error_vprint(const struct cli *cli, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", cli->prog);
	if (cli->command)
		fprintf(stderr, "%s: ", cli->command);
	vfprintf(stderr, fmt, ap);
}

void cli_error(const struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_vprint(cli, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_usage_error(const struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_vprint(cli, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (try '%s%s%s --help')\n", cli->prog,
		cli->command ? " " : "", cli->command ? cli->command : "");
	return CLI_EXIT_USAGE;
}

int cli_getopt(struct cli *cli, int argc, char **argv, const char *shortopts,
	       const struct option *longopts)
{
	int opt;

	opterr = 0;
	optopt = 0;
	opt = getopt_long(argc, argv, shortopts, longopts, NULL);
	if (opt != '?' && opt != ':')
		return opt;

	/* optopt holds the letter of a bad short option only. */
	if (optopt > 0 && optopt < 0x80 && argv[optind - 1][1] != '-') {
		if (opt == ':')
			cli_usage_error(cli, "option '-%c' needs a value", optopt);
		else
			cli_usage_error(cli, "unknown option '-%c'", optopt);
	} else if (opt == ':') {
		cli_usage_error(cli, "option '%s' needs a value", argv[optind - 1]);
	} else if (optopt >= CLI_OPT_SOCKET) {
		/* a known long option given "=value" it does not take */
		cli_usage_error(cli, "option '%s' takes no value", argv[optind - 1]);
	} else {
		cli_usage_error(cli, "unknown option '%s'", argv[optind - 1]);
	}

	return '?';
}

bool cli_global_option(struct cli *cli, int opt, const char *arg)
{
	switch (opt) {
	case CLI_OPT_SOCKET:
		cli->socket_path = arg;
		return true;
	case CLI_OPT_JSON:
		cli->json = true;
		return true;
	default:
		return false;
	}
}

enum cli_exit cli_exit_for(int err)
{
	if (err == 0)
		return CLI_EXIT_OK;

	return err == -ETIMEDOUT ? CLI_EXIT_TIMEOUT : CLI_EXIT_FAILED;
}

char *cli_scrub(char *s)
{
	unsigned char *p;

	for (p = (unsigned char *) s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';

	return s;
}

int cli_fail(const struct cli *cli, const struct lmrsec *c, int err,
	     const char *what)
{
	const char *agent = c ? lmrsec_last_error(c) : "";
	char text[512];

	snprintf(text, sizeof(text), "%s", agent[0] ? agent : lmrsec_strerror(err));
	cli_scrub(text);
	if (what)
		cli_error(cli, "%s: %s", what, text);
	else
		cli_error(cli, "%s", text);

	return cli_exit_for(err);
}

int cli_parse_timeout(const struct cli *cli, const char *arg, int *timeout_ms)
{
	double s, ms;
	char *end;

	errno = 0;
	s = strtod(arg, &end);
	/* NaN fails both comparisons; infinity the second. */
	if (errno || end == arg || *end || !(s > 0) || !(s <= CLI_TIMEOUT_MAX_S))
		return cli_usage_error(cli, "--timeout wants seconds > 0, not '%s'", arg);

	ms = s * 1000;
	*timeout_ms = (int) ms;
	if (*timeout_ms < ms)
		(*timeout_ms)++;	/* round up: 0.0001 s is not "no time" */
	return 0;
}

int cli_parse_count(const char *arg, uint64_t *count)
{
	unsigned long long v;
	char *end;

	if (arg[0] < '0' || arg[0] > '9')
		return -EINVAL;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || *end || v == 0)
		return -EINVAL;

	*count = v;
	return 0;
}

void cli_format_time(uint64_t time_us, char out[CLI_TIME_MAX])
{
	time_t secs = (time_t) (time_us / 1000000);
	struct tm tm;
	size_t n;

	if (!gmtime_r(&secs, &tm)) {
		snprintf(out, CLI_TIME_MAX, "-");
		return;
	}

	n = strftime(out, CLI_TIME_MAX, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, CLI_TIME_MAX - n, ".%06uZ", (unsigned) (time_us % 1000000));
}

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
	stop_signal = sig;
}

void cli_catch_stop_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;	/* no SA_RESTART: waits return -EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);	/* a command that does not read its stdin */
}

bool cli_stop_requested(void)
{
	return stop_signal != 0;
}

int64_t cli_deadline(int timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + timeout_ms;
}

int cli_time_left(int64_t deadline)
{
	struct timespec ts;
	int64_t left;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	left = deadline - ((int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	if (left <= 0)
		return 0;

	return left > INT_MAX ? INT_MAX : (int) left;
}

#define CLI_STREAM_TICK_MS	500	/* how often a stream looks at signals */

enum cli_stream_opt {
	CLI_STREAM_OPT_COUNT = CLI_OPT_COMMAND_BASE,
	CLI_STREAM_OPT_TIMEOUT,
};

int cli_stream_parse(struct cli *cli, int argc, char **argv, void (*print_usage)(void),
		     struct cli_stream_args *a)
{
	static const struct option options[] = {
		CLI_GLOBAL_LONG_OPTIONS,
		{ "count", required_argument, NULL, CLI_STREAM_OPT_COUNT },
		{ "timeout", required_argument, NULL, CLI_STREAM_OPT_TIMEOUT },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	*a = (struct cli_stream_args) { .timeout_ms = -1 };
	while ((opt = cli_getopt(cli, argc, argv, ":h", options)) != -1) {
		if (cli_global_option(cli, opt, optarg))
			continue;

		switch (opt) {
		case 'h':
			print_usage();
			return -1;
		case CLI_STREAM_OPT_COUNT:
			if (cli_parse_count(optarg, &a->count) < 0)
				return cli_usage_error(cli, "--count wants a number > 0, not '%s'", optarg);
			break;
		case CLI_STREAM_OPT_TIMEOUT:
			if (cli_parse_timeout(cli, optarg, &a->timeout_ms))
				return CLI_EXIT_USAGE;
			break;
		default:
			return CLI_EXIT_USAGE;
		}
	}

	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);

	return 0;
}

int cli_stream(const struct cli *cli, struct lmrsec *c, const struct cli_stream_args *a,
	       cli_stream_next_fn next, const char *ended)
{
	uint64_t count = a->count;
	int64_t deadline = a->timeout_ms > 0 ? cli_deadline(a->timeout_ms) : 0;
	uint64_t seen = 0;
	int wait, left, e;

	while (!cli_stop_requested() && (!count || seen < count)) {
		wait = CLI_STREAM_TICK_MS;
		if (deadline) {
			left = cli_time_left(deadline);
			if (left == 0)
				return count ? CLI_EXIT_TIMEOUT : CLI_EXIT_OK;
			if (left < wait)
				wait = left;
		}

		e = next(cli, c, wait);
		if (e == -ETIMEDOUT || e == -EINTR)
			continue;
		if (e < 0)
			return cli_fail(cli, c, e, ended);
		seen++;
	}

	return CLI_EXIT_OK;
}

int cli_stream_command(struct cli *cli, int argc, char **argv,
		       const struct cli_stream_command *sc)
{
	struct cli_stream_args a;
	struct lmrsec *c;
	int e;

	e = cli_stream_parse(cli, argc, argv, sc->print_usage, &a);
	if (e)
		return e < 0 ? CLI_EXIT_OK : e;

	cli_catch_stop_signals();
	e = cli_connect(cli, CLI_REQUEST_TIMEOUT_MS, &c);
	if (e)
		return e;

	e = sc->start(c, CLI_REQUEST_TIMEOUT_MS);
	if (e < 0)
		e = cli_fail(cli, c, e, sc->refused);
	else
		e = cli_stream(cli, c, &a, sc->next, sc->ended);
	lmrsec_close(c);
	return e;
}

/* What a failed connect means to the operator. */
static const char *connect_hint(int err)
{
	switch (-err) {
	case ECONNRESET:
		return " (is this user allowed on the socket?)";
	default:
		return "";
	}
}

int cli_connect(const struct cli *cli, int timeout_ms, struct lmrsec **out)
{
	char path[sizeof(((struct sockaddr_un *) 0)->sun_path)];
	const char *shown = cli->socket_path;
	int e;

	if (!shown) {
		e = lmrsec_default_path(path, sizeof(path));
		shown = e < 0 ? "the default socket" : path;
	}

	e = lmrsec_connect_timeout(cli->socket_path, timeout_ms, out);
	if (e == 0)
		return CLI_EXIT_OK;

	cli_error(cli, "cannot talk to the agent at %s: %s%s", shown,
		  lmrsec_strerror(e), connect_hint(e));

	if (e == -ETIMEDOUT)
		return CLI_EXIT_TIMEOUT;

	/* The agent was there and answered, but no. */
	if (e == -EPROTONOSUPPORT || e == -EPROTO)
		return CLI_EXIT_FAILED;

	return CLI_EXIT_UNREACHABLE;
}

static const struct command *command_find(const char *name)
{
	size_t i;

	for (i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];

	return NULL;
}

/* `lmrsecctl help [COMMAND]` is `lmrsecctl [COMMAND] --help`. */
static int run_help(struct cli *cli, int argc, char **argv)
{
	const struct command *cmd;
	char help[] = "--help";
	char *args[3];

	if (argc < 2) {
		usage(stdout);
		return CLI_EXIT_OK;
	}

	cmd = command_find(argv[1]);
	if (!cmd)
		return cli_usage_error(cli, "unknown command '%s'", argv[1]);

	cli->command = cmd->name;
	args[0] = argv[1];
	args[1] = help;
	args[2] = NULL;
	optind = 0;
	return cmd->run(cli, 2, args);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		CLI_GLOBAL_LONG_OPTIONS,
		{ "version", no_argument, NULL, CLI_OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct cli cli = { .prog = "lmrsecctl" };
	const struct command *cmd;
	int opt;

	/* '+': stop at the command name; what follows is the command's. */
	while ((opt = cli_getopt(&cli, argc, argv, "+:h", options)) != -1) {
		if (cli_global_option(&cli, opt, optarg))
			continue;

		switch (opt) {
		case 'h':
			usage(stdout);
			return CLI_EXIT_OK;
		case CLI_OPT_VERSION:
			printf("lmrsecctl %s (protocol %d)\n", PACKAGE_VERSION,
			       LMRSEC_PROTOCOL_VERSION);
			return CLI_EXIT_OK;
		default:
			return CLI_EXIT_USAGE;
		}
	}

	if (optind >= argc)
		return cli_usage_error(&cli, "no command given");

	if (strcmp(argv[optind], "help") == 0)
		return run_help(&cli, argc - optind, argv + optind);

	cmd = command_find(argv[optind]);
	if (!cmd)
		return cli_usage_error(&cli, "unknown command '%s'", argv[optind]);

	cli.command = cmd->name;
	argc -= optind;
	argv += optind;
	optind = 0;	/* glibc: start over, at argv[1] of the command */
	return cmd->run(&cli, argc, argv);
}
