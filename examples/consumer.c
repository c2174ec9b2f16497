/*
 * consumer.c — a minimal LMR crypto application on liblmrsec.
 *
 * It becomes the consumer of the LMR types named on the command line
 * (default "*", every type), and for each key-management payload the agent
 * hands over it checks the agent's SHA-256 fingerprint, prints one line
 *
 *   received id=3 lmr-type=TETRA size=256 sha256=ab12... (verified)
 *
 * and ACKs it, which lets the agent delete its copy.  A real application
 * would install the key before the ACK: until then the agent keeps it.
 *
 *   consumer [--socket PATH] [--count N] [--takeover] [LMR-TYPE...]
 *
 * Build (it needs nothing but liblmrsec):
 *   cc -o consumer consumer.c $(pkg-config --cflags --libs lmrsec)
 * Stop it with Ctrl-C or SIGTERM; it closes its connection cleanly, and
 * any payload not yet ACKed stays in the agent's spool.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmrsec.h"

#define MAX_TYPES	32
#define REQUEST_TIMEOUT_MS 5000
/* next_delivery() returns -EINTR when a signal arrives while it waits; the
 * bounded wait also catches a signal landing just before it blocks. */
#define WAIT_SLICE_MS	1000

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
	sa.sa_handler = on_signal;	/* no SA_RESTART, so waits are interrupted */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static void usage(FILE *out)
{
	fprintf(out, "Usage: consumer [--socket PATH] [--count N] [--takeover] [LMR-TYPE...]\n");
}

/* Verifies, prints and ACKs one payload.  0, or a negative errno. */
static int handle(struct lmrsec *c, const struct lmrsec_delivery *d)
{
	char hex[65];
	int e;

	lmrsec_fingerprint_hex(d->fingerprint, hex);
	if (lmrsec_delivery_verify(d) < 0) {
		/* Damaged on the way: give it back rather than use it. */
		fprintf(stderr, "consumer: id=%" PRIu64 " fails its fingerprint, NACKed\n", d->id);
		return lmrsec_nack(c, d->id, REQUEST_TIMEOUT_MS);
	}

	/* ... a real application installs d->payload here ... */

	e = lmrsec_ack(c, d->id, REQUEST_TIMEOUT_MS);
	if (e < 0)
		return e;

	printf("received id=%" PRIu64 " lmr-type=%s size=%zu sha256=%s (verified)\n",
	       d->id, d->lmr_type, d->payload_len, hex);
	fflush(stdout);	/* one line per payload, even into a pipe */
	return 0;
}

/* Takes payloads until count is reached (0: no limit) or a signal. */
static int consume(struct lmrsec *c, unsigned long count)
{
	struct lmrsec_delivery *d;
	unsigned long got = 0;
	int e;

	while (!stop && (count == 0 || got < count)) {
		e = lmrsec_next_delivery(c, &d, WAIT_SLICE_MS);
		if (e == -ETIMEDOUT || e == -EINTR)
			continue;
		if (e < 0) {
			/* e.g. -EBUSY: another consumer took our types over. */
			fprintf(stderr, "consumer: %s%s%s\n", lmrsec_strerror(e),
				lmrsec_last_error(c)[0] ? ": " : "", lmrsec_last_error(c));
			return e;
		}

		e = handle(c, d);
		lmrsec_delivery_free(d);	/* wipes the payload */
		if (e < 0) {
			fprintf(stderr, "consumer: ack: %s\n", lmrsec_strerror(e));
			return e;
		}
		got++;
	}

	return 0;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "takeover", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *types[MAX_TYPES + 1] = { "*", NULL };
	const char *socket_path = NULL;	/* NULL: the library's default */
	unsigned long count = 0;
	int takeover = 0;
	struct lmrsec *c;
	char *end;
	int opt, i, e;

	while ((opt = getopt_long(argc, argv, "s:n:th", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			socket_path = optarg;
			break;
		case 'n':
			count = strtoul(optarg, &end, 10);
			if (*end || count == 0) {
				fprintf(stderr, "consumer: --count wants a number > 0\n");
				return 2;
			}
			break;
		case 't':
			takeover = 1;
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
		fprintf(stderr, "consumer: at most %d LMR types\n", MAX_TYPES);
		return 2;
	}
	for (i = 0; optind + i < argc; i++)
		types[i] = argv[optind + i];
	if (i > 0)
		types[i] = NULL;

	catch_signals();

	/* Connecting also agrees on the protocol version with the agent. */
	e = lmrsec_connect(socket_path, &c);
	if (e < 0) {
		fprintf(stderr, "consumer: connect: %s\n", lmrsec_strerror(e));
		return 1;
	}

	e = lmrsec_subscribe(c, types, takeover, REQUEST_TIMEOUT_MS);
	if (e < 0) {
		fprintf(stderr, "consumer: subscribe: %s%s%s\n", lmrsec_strerror(e),
			lmrsec_last_error(c)[0] ? ": " : "", lmrsec_last_error(c));
		lmrsec_close(c);
		return 1;
	}

	e = consume(c, count);
	lmrsec_close(c);
	return e < 0 ? 1 : 0;
}
