/*
 * cmd-status.c — `lmrsecctl status`: the agent's registration, spool,
 * consumers and counters, for a human or (--json) as one JSON object.
 */
#define _GNU_SOURCE

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "json.h"

enum status_opt {
	STATUS_OPT_TIMEOUT = CLI_OPT_COMMAND_BASE,
};

static void status_usage(void)
{
	printf("Usage: lmrsecctl status [--timeout S] [--json] [--socket PATH]\n"
	       "\n"
	       "Shows the registration (state, AoR, registrar, transport, expiry,\n"
	       "next retry, last answer), the spool, the consumers and the counters.\n"
	       "\n"
	       "  --timeout S     give up after S seconds (default 5)\n"
	       CLI_GLOBAL_HELP);
}

/* Calls each() for every LMR type in the comma separated list. */
static void consumers_each(const char *list, void (*each)(const char *type, void *ctx),
			   void *ctx)
{
	char copy[sizeof(((struct lmrsec_status *) 0)->consumers)];
	char *save = NULL;
	char *type;

	snprintf(copy, sizeof(copy), "%s", list);
	for (type = strtok_r(copy, ",", &save); type; type = strtok_r(NULL, ",", &save))
		each(type, ctx);
}

static void json_consumer(const char *type, void *ctx)
{
	json_string(ctx, NULL, type);
}

static void status_print_json(const struct lmrsec_status *st)
{
	struct json j;

	json_begin(&j, stdout);
	json_object_begin(&j, "registration");
	json_string(&j, "state", st->reg_state);
	json_string(&j, "aor", st->aor);
	json_string(&j, "registrar", st->registrar);
	json_string(&j, "transport", st->transport);
	json_uint(&j, "expires_in", st->expires_in);
	json_uint(&j, "next_retry", st->next_retry);
	json_uint(&j, "last_status", st->last_status);
	json_string(&j, "last_reason", st->last_reason);
	json_object_end(&j);

	json_object_begin(&j, "spool");
	json_uint(&j, "messages", st->spool_messages);
	json_uint(&j, "bytes", st->spool_bytes);
	json_object_end(&j);

	json_array_begin(&j, "consumers");
	consumers_each(st->consumers, json_consumer, &j);
	json_array_end(&j);

	json_object_begin(&j, "counters");
	json_uint(&j, "received", st->received);
	json_uint(&j, "delivered", st->delivered);
	json_uint(&j, "acked", st->acked);
	json_uint(&j, "rejected", st->rejected);
	json_uint(&j, "sent", st->sent);
	json_uint(&j, "expired", st->expired);
	json_object_end(&j);
	json_end(&j);
}

/* "-" for what the agent left empty, so columns stay readable. */
static const char *or_dash(const char *s)
{
	return s[0] ? s : "-";
}

static void status_print_human(struct lmrsec_status *st)
{
	cli_scrub(st->reg_state);
	cli_scrub(st->aor);
	cli_scrub(st->registrar);
	cli_scrub(st->transport);
	cli_scrub(st->last_reason);
	cli_scrub(st->consumers);

	printf("registration:  %s\n", or_dash(st->reg_state));
	printf("  aor:         %s\n", or_dash(st->aor));
	printf("  registrar:   %s\n", or_dash(st->registrar));
	printf("  transport:   %s\n", or_dash(st->transport));
	if (st->expires_in)
		printf("  expires in:  %" PRIu32 " s\n", st->expires_in);
	else
		printf("  expires in:  -\n");
	if (st->next_retry)
		printf("  next retry:  in %" PRIu32 " s\n", st->next_retry);
	else
		printf("  next retry:  -\n");
	if (st->last_status)
		printf("  last answer: %" PRIu32 " %s\n", st->last_status, st->last_reason);
	else
		printf("  last answer: -\n");
	printf("spool:         %" PRIu64 " message%s, %" PRIu64 " bytes\n",
	       st->spool_messages, st->spool_messages == 1 ? "" : "s",
	       st->spool_bytes);
	printf("consumers:     %s\n", st->consumers[0] ? st->consumers : "none");
	printf("counters:      received %" PRIu64 ", delivered %" PRIu64
	       ", acked %" PRIu64 ", rejected %" PRIu64 ", sent %" PRIu64
	       ", expired %" PRIu64 "\n",
	       st->received, st->delivered, st->acked, st->rejected, st->sent,
	       st->expired);
	fflush(stdout);
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
	static const struct option options[] = {
		CLI_GLOBAL_LONG_OPTIONS,
		{ "timeout", required_argument, NULL, STATUS_OPT_TIMEOUT },
		{ NULL, 0, NULL, 0 },
	};
	int timeout_ms = CLI_STATUS_TIMEOUT_MS;
	struct lmrsec_status st;
	struct lmrsec *c;
	int64_t deadline;
	int opt, e;

	while ((opt = cli_getopt(cli, argc, argv, ":h", options)) != -1) {
		if (cli_global_option(cli, opt, optarg))
			continue;

		switch (opt) {
		case 'h':
			status_usage();
			return CLI_EXIT_OK;
		case STATUS_OPT_TIMEOUT:
			if (cli_parse_timeout(cli, optarg, &timeout_ms))
				return CLI_EXIT_USAGE;
			break;
		default:
			return CLI_EXIT_USAGE;
		}
	}

	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);

	deadline = cli_deadline(timeout_ms);
	e = cli_connect(cli, timeout_ms, &c);
	if (e)
		return e;

	e = lmrsec_status(c, &st, cli_time_left(deadline));
	if (e < 0) {
		e = cli_fail(cli, c, e, NULL);
		lmrsec_close(c);
		return e;
	}

	lmrsec_close(c);
	if (cli->json)
		status_print_json(&st);
	else
		status_print_human(&st);

	return CLI_EXIT_OK;
}
