/*
 * reconnect.c — an LMR crypto application that outlives agent restarts.
 *
 * The pattern lmrsec.h documents under "Reconnecting": connect, subscribe,
 * consume; when the connection is lost (the agent restarted, crashed or is
 * being upgraded) close the handle, wait with exponential backoff and
 * jitter (100 ms doubling to 5 s), and start over.  Nothing is lost in the
 * gap: the agent keeps every payload that was not ACKed and delivers it
 * again, with the same id, after the new subscribe.
 *
 *   reconnect [--socket PATH] [--count N] [LMR-TYPE...]
 *
 * Prints one line per event of its life:
 *   connected (protocol 1, agent 0.1.0)
 *   received id=3 lmr-type=TETRA size=256 sha256=ab12... (verified)
 *   connection lost: the agent closed the connection; retrying in 100 ms
 *   cannot connect: no agent socket at that path ...; retrying in 200 ms
 * Stops after N payloads (default: never) or on SIGINT/SIGTERM.
 *
 * Build: cc -o reconnect reconnect.c $(pkg-config --cflags --libs lmrsec)
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lmrsec.h"

#define MAX_TYPES		32
#define REQUEST_TIMEOUT_MS	5000
#define WAIT_SLICE_MS		1000	/* to notice a stop signal */
#define RETRY_MIN_MS		100
#define RETRY_MAX_MS		5000

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void) sig;
	stop = 1;
}

static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;	/* no SA_RESTART: waits are interrupted */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* The agent's own words when it gave any, else the library's. */
static void report(const char *what, struct lmrsec *c, int err, int retry_ms)
{
	const char *agent = c ? lmrsec_last_error(c) : "";

	printf("%s: %s%s%s; retrying in %d ms\n", what, lmrsec_strerror(err),
	       agent[0] ? ": " : "", agent, retry_ms);
	fflush(stdout);
}

/* Verifies, "installs" and ACKs one payload. */
static int take(struct lmrsec *c, const struct lmrsec_delivery *d)
{
	char hex[65];

	if (lmrsec_delivery_verify(d) < 0)
		return lmrsec_nack(c, d->id, REQUEST_TIMEOUT_MS);

	/* ... install d->payload here, idempotently: after a reconnect the
	 * same id may come again if our ACK was lost with the connection ... */

	lmrsec_fingerprint_hex(d->fingerprint, hex);
	printf("received id=%" PRIu64 " lmr-type=%s size=%zu sha256=%s (verified)\n",
	       d->id, d->lmr_type, d->payload_len, hex);
	fflush(stdout);
	return lmrsec_ack(c, d->id, REQUEST_TIMEOUT_MS);
}

/* Takes payloads until *got reaches count (0: never), a signal, or an
 * error, which it returns. */
static int consume(struct lmrsec *c, unsigned long count, unsigned long *got)
{
	struct lmrsec_delivery *d;
	int e;

	while (!stop && (count == 0 || *got < count)) {
		e = lmrsec_next_delivery(c, &d, WAIT_SLICE_MS);
		if (e == -ETIMEDOUT || e == -EINTR)
			continue;
		if (e < 0)
			return e;

		e = take(c, d);
		lmrsec_delivery_free(d);	/* wipes the payload */
		if (e < 0)
			return e;
		(*got)++;
	}

	return 0;
}

/* Sleeps delay_ms plus up to half as much again, so that many clients of
 * one restarted agent do not all come back in the same millisecond. */
static void backoff_sleep(int delay_ms)
{
	int ms = delay_ms + rand() % (delay_ms / 2 + 1);
	struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);	/* a signal cuts it short: fine */
}

static int next_delay(int delay_ms)
{
	return delay_ms >= RETRY_MAX_MS / 2 ? RETRY_MAX_MS : 2 * delay_ms;
}

/* Connects and subscribes; on failure reports it and returns the error. */
static int session_open(const char *path, const char *const *types,
			struct lmrsec **out, int delay_ms)
{
	struct lmrsec *c;
	int e;

	*out = NULL;
	e = lmrsec_connect(path, &c);
	if (e < 0) {
		report("cannot connect", NULL, e, delay_ms);
		return e;
	}

	/* takeover 0: a second copy of this program is refused, not obeyed. */
	e = lmrsec_subscribe(c, types, 0, REQUEST_TIMEOUT_MS);
	if (e < 0) {
		report("cannot subscribe", c, e, delay_ms);
		lmrsec_close(c);
		return e;
	}

	printf("connected (protocol %d, agent %s)\n", lmrsec_protocol_version(c),
	       lmrsec_agent_version(c));
	fflush(stdout);
	*out = c;
	return 0;
}

static int run(const char *path, const char *const *types, unsigned long count)
{
	int delay_ms = RETRY_MIN_MS;
	unsigned long got = 0;
	struct lmrsec *c;
	int e;

	while (!stop && (count == 0 || got < count)) {
		if (session_open(path, types, &c, delay_ms) < 0) {
			backoff_sleep(delay_ms);
			delay_ms = next_delay(delay_ms);
			continue;
		}

		delay_ms = RETRY_MIN_MS;	/* it worked: start small again */
		e = consume(c, count, &got);
		if (e < 0)
			report("connection lost", c, e, delay_ms);
		lmrsec_close(c);
		if (e < 0)
			backoff_sleep(delay_ms);
	}

	return 0;
}

static void usage(FILE *out)
{
	fprintf(out, "Usage: reconnect [--socket PATH] [--count N] [LMR-TYPE...]\n");
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *types[MAX_TYPES + 1] = { "*", NULL };
	const char *socket_path = NULL;	/* NULL: the library's default */
	unsigned long count = 0;
	char *end;
	int opt, i;

	while ((opt = getopt_long(argc, argv, "s:n:h", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			socket_path = optarg;
			break;
		case 'n':
			count = strtoul(optarg, &end, 10);
			if (*end || count == 0) {
				fprintf(stderr, "reconnect: --count wants a number > 0\n");
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}

	if (argc - optind > MAX_TYPES) {
		fprintf(stderr, "reconnect: at most %d LMR types\n", MAX_TYPES);
		return 2;
	}
	for (i = 0; optind + i < argc; i++)
		types[i] = argv[optind + i];
	if (i > 0)
		types[i] = NULL;

	srand((unsigned) time(NULL) ^ (unsigned) getpid());
	catch_signals();
	return run(socket_path, types, count);
}
