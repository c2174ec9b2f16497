/*
 * fault-consumer — the consumer of the fault-injection tests
 * (tests/integration/fault-*.sh), on liblmrsec like any application.
 *
 * It subscribes to the LMR types named (default "*", every type), ACKs
 * every payload, and reconnects
 * (every 50 ms, no backoff: the tests restart the agent on purpose and want
 * it back at once) whenever the connection is lost, until SIGTERM or
 * --count ACKs.  It logs the two halves of each hand-over separately, so a
 * test can tell a redelivery after a crash between delivery and ACK
 * (at-least-once, allowed) from one after an ACK the agent confirmed (a
 * bug):
 *
 *   connected
 *   delivered id=3 sha256=ab12... t=1764770000.123456 verified=1
 *   acked id=3 sha256=ab12... t=1764770000.124001
 *   ack-failed id=3 sha256=ab12... error=Connection reset by peer
 *   lost error=...
 *
 * t= is CLOCK_REALTIME in seconds, to compare with a sender's clock.
 *
 *   fault-consumer --socket PATH [--count N] [LMR-TYPE...]
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

#include "lmrsec.h"

#define REQUEST_TIMEOUT_MS	5000
#define WAIT_SLICE_MS		200
#define RETRY_NS		50000000L
#define MAX_TYPES		8

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

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Logs the delivery, ACKs it and logs the outcome; the ACK's error. */
static int take(struct lmrsec *c, const struct lmrsec_delivery *d)
{
	char hex[65];
	int e;

	lmrsec_fingerprint_hex(d->fingerprint, hex);
	printf("delivered id=%" PRIu64 " sha256=%s t=%.6f verified=%d\n", d->id, hex,
	       now_s(), lmrsec_delivery_verify(d) == 0);
	fflush(stdout);

	e = lmrsec_ack(c, d->id, REQUEST_TIMEOUT_MS);
	if (e < 0)
		printf("ack-failed id=%" PRIu64 " sha256=%s error=%s\n", d->id, hex,
		       lmrsec_strerror(e));
	else
		printf("acked id=%" PRIu64 " sha256=%s t=%.6f\n", d->id, hex, now_s());
	fflush(stdout);
	return e;
}

/* Consumes until *acked reaches count (0: never), a signal or an error. */
static int consume(struct lmrsec *c, unsigned long count, unsigned long *acked)
{
	struct lmrsec_delivery *d;
	int e;

	while (!stop && (count == 0 || *acked < count)) {
		e = lmrsec_next_delivery(c, &d, WAIT_SLICE_MS);
		if (e == -ETIMEDOUT || e == -EINTR)
			continue;
		if (e < 0)
			return e;

		e = take(c, d);
		lmrsec_delivery_free(d);
		if (e < 0)
			return e;
		(*acked)++;
	}

	return 0;
}

static int session(const char *path, const char *const *types,
		   unsigned long count, unsigned long *acked)
{
	struct lmrsec *c;
	int e;

	e = lmrsec_connect(path, &c);
	if (e < 0)
		return e;

	e = lmrsec_subscribe(c, types, 0, REQUEST_TIMEOUT_MS);
	if (e == 0) {
		printf("connected\n");
		fflush(stdout);
		e = consume(c, count, acked);
		if (e < 0) {
			printf("lost error=%s\n", lmrsec_strerror(e));
			fflush(stdout);
		}
	}
	lmrsec_close(c);
	return e;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const struct timespec retry = { 0, RETRY_NS };
	const char *types[MAX_TYPES + 1] = { "*", NULL };
	const char *path = NULL;
	unsigned long count = 0, acked = 0;
	int opt, i;

	while ((opt = getopt_long(argc, argv, "s:n:", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			path = optarg;
			break;
		case 'n':
			count = strtoul(optarg, NULL, 10);
			break;
		default:
			path = NULL;
			optind = argc;
			break;
		}
	}
	if (!path || argc - optind > MAX_TYPES) {
		fprintf(stderr, "Usage: fault-consumer --socket PATH [--count N] [LMR-TYPE...]\n");
		return 2;
	}
	for (i = 0; optind + i < argc; i++)
		types[i] = argv[optind + i];
	if (i > 0)
		types[i] = NULL;

	catch_signals();
	while (!stop && (count == 0 || acked < count)) {
		if (session(path, types, count, &acked) < 0 && !stop)
			nanosleep(&retry, NULL);
	}
	return 0;
}
