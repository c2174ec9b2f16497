/*
 * cmd-send.c — `lmrsecctl send`: one client-initiated message to the KMF
 * through the agent; the payload comes from a file or stdin, byte for byte.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"

#define SEND_PAYLOAD_MAX	65535	/* DESIGN §2: Payload IE, 1 to 65535 */

enum send_opt {
	SEND_OPT_LMR_TYPE = CLI_OPT_COMMAND_BASE,
	SEND_OPT_TO,
	SEND_OPT_TIMEOUT,
	SEND_OPT_FILE,
};

struct send_args {
	const char *lmr_type;
	const char *to;		/* NULL: the KMF the agent is configured with */
	const char *file;	/* NULL or "-": stdin */
	int timeout_ms;
};

static void send_usage(void)
{
	printf("Usage: lmrsecctl send --lmr-type T [--to URI] [--timeout S] [--file PATH]\n"
	       "\n"
	       "Sends a client-initiated LMR security message to the KMF and prints\n"
	       "the final SIP answer, e.g. \"200 OK\".  The payload (1 to 65535 bytes,\n"
	       "any bytes) is read from PATH, or from stdin without --file or with \"-\".\n"
	       "Exits 0 on a 2xx answer, 1 on any other answer or when the agent is\n"
	       "not registered, 4 when no answer came within the timeout.\n"
	       "\n"
	       "  --lmr-type T    LMR type of the message (e.g. TETRA, P25)\n"
	       "  --to URI        the KMF to send to (default: the configured one)\n"
	       "  --timeout S     give up after S seconds (default 30)\n"
	       "  --file PATH     read the payload from PATH\n"
	       CLI_GLOBAL_HELP);
}

/* Reads all of fd into buf; *len > max means the input was too long. */
static int read_payload_fd(int fd, uint8_t *buf, size_t size, size_t *len)
{
	ssize_t n;

	*len = 0;
	while (*len < size) {
		n = read(fd, buf + *len, size - *len);
		if (n == 0)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;

		*len += (size_t) n;
	}

	return 0;
}

static int read_payload(const struct cli *cli, const char *file, uint8_t *buf,
			size_t size, size_t *len)
{
	bool from_stdin = !file || strcmp(file, "-") == 0;
	int fd = STDIN_FILENO;
	int e;

	*len = 0;
	if (!from_stdin) {
		fd = open(file, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			e = -errno;
			cli_error(cli, "cannot open %s: %s", file, strerror(-e));
			return e;
		}
	}

	e = read_payload_fd(fd, buf, size, len);
	if (e < 0)
		cli_error(cli, "cannot read %s: %s", from_stdin ? "stdin" : file,
			  strerror(-e));

	if (!from_stdin)
		close(fd);

	return e;
}

/* 0 to go on, -1 after --help, else the exit code of a usage error. */
static int send_parse(struct cli *cli, int argc, char **argv,
		      struct send_args *a)
{
	static const struct option options[] = {
		CLI_GLOBAL_LONG_OPTIONS,
		{ "lmr-type", required_argument, NULL, SEND_OPT_LMR_TYPE },
		{ "to", required_argument, NULL, SEND_OPT_TO },
		{ "timeout", required_argument, NULL, SEND_OPT_TIMEOUT },
		{ "file", required_argument, NULL, SEND_OPT_FILE },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	while ((opt = cli_getopt(cli, argc, argv, ":h", options)) != -1) {
		if (cli_global_option(cli, opt, optarg))
			continue;

		switch (opt) {
		case 'h':
			send_usage();
			return -1;
		case SEND_OPT_LMR_TYPE:
			a->lmr_type = optarg;
			break;
		case SEND_OPT_TO:
			a->to = optarg;
			break;
		case SEND_OPT_TIMEOUT:
			if (cli_parse_timeout(cli, optarg, &a->timeout_ms))
				return CLI_EXIT_USAGE;
			break;
		case SEND_OPT_FILE:
			a->file = optarg;
			break;
		default:
			return CLI_EXIT_USAGE;
		}
	}

	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (!a->lmr_type)
		return cli_usage_error(cli, "--lmr-type is required");
	if (a->to && !a->to[0])
		return cli_usage_error(cli, "--to wants a URI");

	return 0;
}

static int send_report(const struct cli *cli, struct lmrsec_send_result *res)
{
	bool ok = res->sip_status >= 200 && res->sip_status <= 299;
	struct json j;

	if (cli->json) {
		json_begin(&j, stdout);
		json_uint(&j, "status", res->sip_status);
		json_string(&j, "reason", res->sip_reason);
		json_end(&j);
	}

	cli_scrub(res->sip_reason);	/* from the SIP network */
	if (!cli->json && ok) {
		printf("%u %s\n", res->sip_status, res->sip_reason);
		fflush(stdout);
	}

	if (ok)
		return CLI_EXIT_OK;

	cli_error(cli, "%u %s", res->sip_status, res->sip_reason);
	return CLI_EXIT_FAILED;
}

/* Talks to the agent; the payload stays the caller's to wipe. */
static int send_payload(const struct cli *cli, const struct send_args *a,
			const uint8_t *payload, size_t len)
{
	int64_t deadline = cli_deadline(a->timeout_ms);
	struct lmrsec_send_result res;
	struct lmrsec *c;
	int e;

	e = cli_connect(cli, a->timeout_ms < CLI_REQUEST_TIMEOUT_MS ?
			a->timeout_ms : CLI_REQUEST_TIMEOUT_MS, &c);
	if (e)
		return e;

	e = lmrsec_send(c, a->lmr_type, a->to, payload, len, &res,
			cli_time_left(deadline));
	if (e < 0) {
		e = cli_fail(cli, c, e, NULL);
		lmrsec_close(c);
		return e;
	}

	lmrsec_close(c);
	return send_report(cli, &res);
}

int cmd_send(struct cli *cli, int argc, char **argv)
{
	struct send_args a = { .timeout_ms = CLI_SEND_TIMEOUT_MS };
	/* One byte more than allowed tells "too long" from "exactly the max". */
	static uint8_t payload[SEND_PAYLOAD_MAX + 1];
	size_t len;
	int e;

	e = send_parse(cli, argc, argv, &a);
	if (e)
		return e < 0 ? CLI_EXIT_OK : e;

	if (!lmrsec_lmr_type_valid(a.lmr_type))
		return cli_usage_error(cli, "--lmr-type wants 1 to 16 of A-Z a-z 0-9 _ -, not '%s'",
				       a.lmr_type);

	if (read_payload(cli, a.file, payload, sizeof(payload), &len) < 0)
		return CLI_EXIT_USAGE;

	if (len == 0 || len > SEND_PAYLOAD_MAX) {
		explicit_bzero(payload, sizeof(payload));
		return cli_usage_error(cli, "the payload must be 1 to %d bytes, got %s%zu",
				       SEND_PAYLOAD_MAX, len > SEND_PAYLOAD_MAX ? "more than " : "",
				       len > SEND_PAYLOAD_MAX ? (size_t) SEND_PAYLOAD_MAX : len);
	}

	e = send_payload(cli, &a, payload, len);
	explicit_bzero(payload, len);	/* it may be key material */
	return e;
}
