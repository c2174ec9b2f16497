/*
 * cmd-queue.c — `lmrsecctl queue`: the messages the agent keeps in its
 * spool, metadata only (id, LMR type, size, received time, whether a
 * consumer has it, SHA-256 fingerprint), as a table or (--json) an array.
 */
#define _GNU_SOURCE

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "json.h"

enum queue_opt {
	QUEUE_OPT_LIMIT = CLI_OPT_COMMAND_BASE,
	QUEUE_OPT_TIMEOUT,
};

struct queue_args {
	uint64_t limit;		/* 0: all */
	int timeout_ms;
};

static void queue_usage(void)
{
	printf("Usage: lmrsecctl queue [--limit N] [--timeout S] [--json]\n"
	       "\n"
	       "Lists the messages in the agent's spool, oldest first: id, LMR type,\n"
	       "payload size, when it was received, its state (\"waiting\" for a\n"
	       "consumer, or \"in-flight\": delivered, not yet acked) and the SHA-256\n"
	       "fingerprint of its payload.  Never the payload itself.  With --json, a\n"
	       "JSON array of objects that also carry the KMF URI, MC service ID and\n"
	       "sender.\n"
	       "\n"
	       "  --limit N       list the first N messages only\n"
	       "  --timeout S     give up after S seconds (default 5)\n"
	       CLI_GLOBAL_HELP);
}

static int queue_parse(struct cli *cli, int argc, char **argv, struct queue_args *a)
{
	static const struct option options[] = {
		CLI_GLOBAL_LONG_OPTIONS,
		{ "limit", required_argument, NULL, QUEUE_OPT_LIMIT },
		{ "timeout", required_argument, NULL, QUEUE_OPT_TIMEOUT },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	while ((opt = cli_getopt(cli, argc, argv, ":h", options)) != -1) {
		if (cli_global_option(cli, opt, optarg))
			continue;

		switch (opt) {
		case 'h':
			queue_usage();
			return -1;
		case QUEUE_OPT_LIMIT:
			if (cli_parse_count(optarg, &a->limit) < 0 || a->limit > SIZE_MAX)
				return cli_usage_error(cli, "--limit wants a number > 0, not '%s'", optarg);
			break;
		case QUEUE_OPT_TIMEOUT:
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

static const char *entry_state(const struct lmrsec_queue_entry *e)
{
	return e->in_flight ? "in-flight" : "waiting";
}

static void queue_print_json(const struct lmrsec_queue_entry *entries, size_t n)
{
	char when[CLI_TIME_MAX], hex[65];
	struct json j;
	size_t i;

	json_begin_array(&j, stdout);
	for (i = 0; i < n; i++) {
		const struct lmrsec_queue_entry *e = &entries[i];

		cli_format_time(e->received_us, when);
		lmrsec_fingerprint_hex(e->fingerprint, hex);
		json_object_begin(&j, NULL);
		json_uint(&j, "id", e->id);
		json_string(&j, "lmr_type", e->lmr_type);
		json_uint(&j, "size", e->size);
		json_uint(&j, "received_us", e->received_us);
		json_string(&j, "received", when);
		json_string(&j, "state", entry_state(e));
		json_bool(&j, "in_flight", e->in_flight);
		json_string(&j, "sha256", hex);
		json_string(&j, "kmf_uri", e->kmf_uri);
		json_string(&j, "mc_service_id", e->mc_service_id);
		json_string(&j, "sender", e->sender);
		json_object_end(&j);
	}
	json_end_array(&j);
}

static void queue_print_human(struct lmrsec_queue_entry *entries, size_t n)
{
	char when[CLI_TIME_MAX], hex[65];
	size_t i;

	if (n == 0) {
		printf("spool empty\n");
		return;
	}

	printf("%-10s %-16s %6s  %-27s %-9s  %s\n", "ID", "LMR-TYPE", "SIZE",
	       "RECEIVED", "STATE", "SHA256");
	for (i = 0; i < n; i++) {
		struct lmrsec_queue_entry *e = &entries[i];

		cli_format_time(e->received_us, when);
		lmrsec_fingerprint_hex(e->fingerprint, hex);
		printf("%-10" PRIu64 " %-16s %6" PRIu64 "  %-27s %-9s  %s\n", e->id,
		       cli_scrub(e->lmr_type), e->size, when, entry_state(e), hex);
	}
	fflush(stdout);
}

int cmd_queue(struct cli *cli, int argc, char **argv)
{
	struct queue_args a = { .timeout_ms = CLI_STATUS_TIMEOUT_MS };
	struct lmrsec_queue_entry *entries;
	struct lmrsec *c;
	int64_t deadline;
	size_t n;
	int e;

	e = queue_parse(cli, argc, argv, &a);
	if (e)
		return e < 0 ? CLI_EXIT_OK : e;

	deadline = cli_deadline(a.timeout_ms);
	e = cli_connect(cli, a.timeout_ms, &c);
	if (e)
		return e;

	e = lmrsec_queue(c, 0, (size_t) a.limit, &entries, &n, cli_time_left(deadline));
	if (e < 0) {
		e = cli_fail(cli, c, e, NULL);
		lmrsec_close(c);
		return e;
	}

	lmrsec_close(c);
	if (cli->json)
		queue_print_json(entries, n);
	else
		queue_print_human(entries, n);
	lmrsec_queue_free(entries, n);
	return CLI_EXIT_OK;
}
