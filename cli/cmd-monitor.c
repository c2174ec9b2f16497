/*
 * cmd-monitor.c — `lmrsecctl monitor`: the agent's events as they happen,
 * one line each (NDJSON with --json).  Events carry metadata only — id,
 * LMR type, size, SHA-256 fingerprint, SIP status — never payload bytes.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "json.h"

static void monitor_usage(void)
{
	printf("Usage: lmrsecctl monitor [--count N] [--timeout S] [--json]\n"
	       "\n"
	       "Streams the agent's events, one line each, as they happen:\n"
	       "registration changes and messages received, delivered, acked,\n"
	       "nacked, rejected and expired, with message id, LMR type, size and\n"
	       "SHA-256 fingerprint (never payload bytes), SIP status and reason.\n"
	       "With --json, one JSON object per line (NDJSON).\n"
	       "\n"
	       "  --count N       stop after N events\n"
	       "  --timeout S     stop after S seconds\n"
	       CLI_GLOBAL_HELP
	       "\n"
	       "Exits 0 when stopped by --count, --timeout, SIGINT or SIGTERM; 4 when\n"
	       "--timeout ends it before --count events came; 1 when the agent closes\n"
	       "the connection.\n");
}

/* ---------- printing one event ---------- */

static void event_print_json(const struct lmrsec_event *ev)
{
	char when[CLI_TIME_MAX], hex[65];
	struct json j;

	cli_format_time(ev->time_us, when);
	json_begin(&j, stdout);
	json_string(&j, "event", ev->name);
	json_uint(&j, "time_us", ev->time_us);
	json_string(&j, "time", when);
	if (ev->id)
		json_uint(&j, "id", ev->id);
	if (ev->lmr_type[0])
		json_string(&j, "lmr_type", ev->lmr_type);
	if (ev->id || ev->has_fingerprint)
		json_uint(&j, "size", ev->size);
	if (ev->has_fingerprint) {
		lmrsec_fingerprint_hex(ev->fingerprint, hex);
		json_string(&j, "sha256", hex);
	}
	if (ev->reg_state[0])
		json_string(&j, "state", ev->reg_state);
	if (ev->sip_status)
		json_uint(&j, "sip_status", ev->sip_status);
	if (ev->reason[0])
		json_string(&j, "reason", ev->reason);
	json_end(&j);
}

/* "2024-05-01T12:00:00.123456Z received id=3 lmr-type=TETRA size=256
 * sha256=…"; the agent's texts are scrubbed of control characters. */
static void event_print_human(struct lmrsec_event *ev)
{
	char when[CLI_TIME_MAX], hex[65];

	cli_format_time(ev->time_us, when);
	printf("%s %s", when, cli_scrub(ev->name));
	if (ev->reg_state[0])
		printf(" state=%s", cli_scrub(ev->reg_state));
	if (ev->id)
		printf(" id=%" PRIu64, ev->id);
	if (ev->lmr_type[0])
		printf(" lmr-type=%s", cli_scrub(ev->lmr_type));
	if (ev->id || ev->has_fingerprint)
		printf(" size=%" PRIu64, ev->size);
	if (ev->has_fingerprint) {
		lmrsec_fingerprint_hex(ev->fingerprint, hex);
		printf(" sha256=%s", hex);
	}
	if (ev->sip_status)
		printf(" status=%u", ev->sip_status);
	if (ev->reason[0])
		printf(" reason=\"%s\"", cli_scrub(ev->reason));
	printf("\n");
	fflush(stdout);	/* one line per event, even into a pipe */
}

/* ---------- the stream ---------- */

/* One event of the stream cli_stream() runs, printed. */
static int monitor_next(const struct cli *cli, struct lmrsec *c, int wait_ms)
{
	struct lmrsec_event *item;
	int e = lmrsec_next_event(c, &item, wait_ms);

	if (e < 0)
		return e;
	if (cli->json)
		event_print_json(item);
	else
		event_print_human(item);
	lmrsec_event_free(item);
	return 0;
}

int cmd_monitor(struct cli *cli, int argc, char **argv)
{
	static const struct cli_stream_command sc = {
		.print_usage = monitor_usage,
		.start = lmrsec_monitor,
		.refused = "cannot become a monitor",
		.next = monitor_next,
		.ended = "event stream ended",
	};

	return cli_stream_command(cli, argc, argv, &sc);
}
