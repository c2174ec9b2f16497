/*
 * cmd-trace.c — `lmrsecctl trace`: the SIP messages the agent sends and
 * receives, as they go, with start line and headers in full and every body
 * replaced by its content type, size and SHA-256 (the agent sanitises them:
 * agent/trace.c).  For the agent's own user and root only.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "json.h"

static void trace_usage(void)
{
	printf("Usage: lmrsecctl trace [--count N] [--timeout S] [--json]\n"
	       "\n"
	       "Streams the SIP messages the agent sends and receives, as they go:\n"
	       "direction, transport, peer, time and size, then the start line and\n"
	       "the headers in full; every body is replaced by its content type, size\n"
	       "and SHA-256 fingerprint (each part of a multipart body too, and the\n"
	       "payload of an interworking-data part), never its bytes. For the\n"
	       "agent's own user and root only. With --json, one JSON object per\n"
	       "message (NDJSON).\n"
	       "\n"
	       "  --count N       stop after N messages\n"
	       "  --timeout S     stop after S seconds\n"
	       CLI_GLOBAL_HELP
	       "\n"
	       "Exits 0 when stopped by --count, --timeout, SIGINT or SIGTERM; 4 when\n"
	       "--timeout ends it before --count messages came; 1 when the agent\n"
	       "refuses (not the agent's user or root) or closes the connection.\n");
}

/* ---------- printing one message ---------- */

static void trace_print_json(const struct lmrsec_trace *t)
{
	char when[CLI_TIME_MAX];
	struct json j;

	cli_format_time(t->time_us, when);
	json_begin(&j, stdout);
	json_uint(&j, "time_us", t->time_us);
	json_string(&j, "time", when);
	json_string(&j, "direction", t->outgoing ? "out" : "in");
	json_string(&j, "transport", t->transport);
	json_string(&j, "peer", t->peer);
	json_uint(&j, "size", t->size);
	if (t->dropped)
		json_uint(&j, "dropped", t->dropped);
	json_string(&j, "text", t->text);
	json_end(&j);
}

/* Line breaks and tabs stay; other control characters (text from the SIP
 * network) become '?', so a terminal cannot be driven by a header. */
static void print_text(char *text)
{
	unsigned char *p;

	for (p = (unsigned char *) text; *p; p++)
		if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
			*p = '?';
	fputs(text, stdout);
	if (p > (unsigned char *) text && p[-1] != '\n')
		putchar('\n');
}

/* "2024-05-01T12:00:00.123456Z out tcp 127.0.0.1:5060 512 bytes", the
 * text, an empty line. */
static void trace_print_human(struct lmrsec_trace *t)
{
	char when[CLI_TIME_MAX];

	cli_format_time(t->time_us, when);
	if (t->dropped)
		printf("[%" PRIu64 " messages not shown: the trace fell behind]\n\n", t->dropped);
	printf("%s %s %s %s %" PRIu64 " bytes\n", when, t->outgoing ? "out" : "in",
	       cli_scrub(t->transport), cli_scrub(t->peer), t->size);
	print_text(t->text);
	printf("\n");
	fflush(stdout);	/* whole messages, even into a pipe */
}

/* ---------- the stream ---------- */

static int trace_next(const struct cli *cli, struct lmrsec *c, int wait_ms)
{
	struct lmrsec_trace *item;
	int e = lmrsec_next_trace(c, &item, wait_ms);

	if (e < 0)
		return e;
	if (cli->json)
		trace_print_json(item);
	else
		trace_print_human(item);
	lmrsec_trace_free(item);
	return 0;
}

int cmd_trace(struct cli *cli, int argc, char **argv)
{
	static const struct cli_stream_command sc = {
		.print_usage = trace_usage,
		.start = lmrsec_trace,
		.refused = "cannot trace",
		.next = trace_next,
		.ended = "trace ended",
	};

	return cli_stream_command(cli, argc, argv, &sc);
}
