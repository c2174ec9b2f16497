/*
 * bench-consumer — the consumer of the benchmark (docs/performance.md).
 *
 * Subscribes to every LMR type through liblmrsec and ACKs each payload.
 * Per delivery it writes one line to the output file:
 *
 *   RECEIVED_US LATENCY_US
 *
 * where RECEIVED_US is the agent's receive time from the delivery metadata
 * and LATENCY_US is the wall clock when this process holds the payload minus
 * that time (agent and consumer run on the same machine, so both clocks are
 * the same).  The benchmark picks the lines of a run by RECEIVED_US.  The
 * file is flushed whenever the agent has nothing to deliver, so a reader
 * sees every line shortly after the load stops.
 *
 *   bench-consumer --socket PATH --out FILE [--one-by-one]
 *
 * ACKs are pipelined (lmrsec_ack_start; their answers are collected while
 * waiting for the next delivery, checked with lmrsec_ack_finish when idle
 * and before exiting), so ACKs that reach the agent together share one
 * delete transaction.  --one-by-one waits for each ACK's answer instead
 * (lmrsec_ack), as the simplest consumer does.
 *
 * Prints "subscribed" on stdout once it is the consumer, and
 * "deliveries N bad-fingerprint M" when SIGTERM or SIGINT stops it.
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

#define REQUEST_TIMEOUT_MS 5000
/* Idle slice: flush the output and look at the stop flag this often. */
#define IDLE_SLICE_MS 100

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;      /* no SA_RESTART: waits return -EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static int64_t wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct tally {
	unsigned long deliveries;
	unsigned long bad;
	int one_by_one;
};

/* The pipelined ACKs' answers so far: 0, or the first failure. */
static int acks_check(struct lmrsec *c, int timeout_ms)
{
	int e = lmrsec_ack_finish(c, timeout_ms);

	return e == -ETIMEDOUT && timeout_ms == 0 ? 0 : e;
}

/* Takes one payload: records when we held it, then checks and ACKs it. */
static int take(struct lmrsec *c, FILE *out, struct tally *t,
		const struct lmrsec_delivery *d)
{
	int64_t held_us = wall_us();

	fprintf(out, "%" PRIu64 " %" PRId64 "\n", d->received_us,
		held_us - (int64_t)d->received_us);
	t->deliveries++;
	if (lmrsec_delivery_verify(d) < 0) {
		t->bad++;
		return lmrsec_nack(c, d->id, REQUEST_TIMEOUT_MS);
	}
	if (t->one_by_one)
		return lmrsec_ack(c, d->id, REQUEST_TIMEOUT_MS);
	return lmrsec_ack_start(c, d->id, REQUEST_TIMEOUT_MS);
}

static int consume(struct lmrsec *c, FILE *out, struct tally *t)
{
	struct lmrsec_delivery *d;
	int e = 0;

	while (!stop) {
		e = lmrsec_next_delivery(c, &d, IDLE_SLICE_MS);
		if (e == -ETIMEDOUT) {
			fflush(out);
			e = acks_check(c, 0);
			if (e < 0)
				break;
			continue;
		}
		if (e == -EINTR)
			continue;
		if (e < 0) {
			fprintf(stderr, "bench-consumer: %s%s%s\n", lmrsec_strerror(e),
				lmrsec_last_error(c)[0] ? ": " : "", lmrsec_last_error(c));
			return e;
		}
		e = take(c, out, t, d);
		lmrsec_delivery_free(d);
		if (e < 0)
			break;
	}
	if (e >= 0 || e == -EINTR)
		e = acks_check(c, REQUEST_TIMEOUT_MS);
	if (e < 0)
		fprintf(stderr, "bench-consumer: ack: %s%s%s\n", lmrsec_strerror(e),
			lmrsec_last_error(c)[0] ? ": " : "", lmrsec_last_error(c));
	return e;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "out", required_argument, NULL, 'o' },
		{ "one-by-one", no_argument, NULL, '1' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const every_type[] = { "*", NULL };
	const char *socket_path = NULL, *out_path = NULL;
	struct tally t = { 0 };
	struct lmrsec *c;
	FILE *out;
	int opt, e;

	while ((opt = getopt_long(argc, argv, "s:o:1", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			socket_path = optarg;
			break;
		case 'o':
			out_path = optarg;
			break;
		case '1':
			t.one_by_one = 1;
			break;
		default:
			fprintf(stderr, "Usage: bench-consumer --socket PATH --out FILE [--one-by-one]\n");
			return 2;
		}
	}
	if (!out_path || optind != argc) {
		fprintf(stderr, "Usage: bench-consumer --socket PATH --out FILE [--one-by-one]\n");
		return 2;
	}
	out = fopen(out_path, "we");
	if (!out) {
		fprintf(stderr, "bench-consumer: %s: %s\n", out_path, strerror(errno));
		return 1;
	}
	catch_signals();
	e = lmrsec_connect(socket_path, &c);
	if (e < 0) {
		fprintf(stderr, "bench-consumer: connect: %s\n", lmrsec_strerror(e));
		fclose(out);
		return 1;
	}
	e = lmrsec_subscribe(c, every_type, 0, REQUEST_TIMEOUT_MS);
	if (e < 0) {
		fprintf(stderr, "bench-consumer: subscribe: %s\n", lmrsec_strerror(e));
		lmrsec_close(c);
		fclose(out);
		return 1;
	}
	printf("subscribed\n");
	fflush(stdout);

	e = consume(c, out, &t);
	lmrsec_close(c);
	fclose(out);
	printf("deliveries %lu bad-fingerprint %lu\n", t.deliveries, t.bad);
	return e < 0 || t.bad ? 1 : 0;
}
