/*
 * cmd-receive.c — `lmrsecctl receive`: the consumer for one or more LMR
 * types.  Each payload is checked against its fingerprint, then stored in
 * DIR/<id>.bin or piped to a command; it is ACKed only once that has
 * succeeded, so the agent keeps anything this tool could not hand on.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"

#define RECEIVE_MAX_TYPES	32	/* as PROTO_MAX_LMR_TYPES */
/* The longest wait between two looks at the stop flag: a signal that
 * lands just before the library blocks is noticed this late at most. */
#define RECEIVE_TICK_MS		500
#define RECEIVE_FILE_NAME_MAX	32	/* "<u64>.bin" */
#define RECEIVE_WHY_MAX		512	/* why a payload could not be handed on */

enum receive_opt {
	RECEIVE_OPT_LMR_TYPE = CLI_OPT_COMMAND_BASE,
	RECEIVE_OPT_COUNT,
	RECEIVE_OPT_TIMEOUT,
	RECEIVE_OPT_OUTPUT,
	RECEIVE_OPT_EXEC,
	RECEIVE_OPT_TAKEOVER,
};

struct receive_args {
	const char *types[RECEIVE_MAX_TYPES + 1];
	size_t n_types;
	uint64_t count;		/* 0: no count */
	int timeout_ms;		/* -1: wait forever */
	const char *output_dir;
	const char *exec_cmd;
	bool takeover;
};

/* Where payloads go: an open directory, or a command. */
struct sink {
	const char *dir;
	int dirfd;		/* -1 in exec mode */
	const char *cmd;
};

static void receive_usage(void)
{
	printf("Usage: lmrsecctl receive --lmr-type T [--count N] [--timeout S]\n"
	       "                         [--takeover] (--output DIR | --exec CMD)\n"
	       "\n"
	       "Acts as the consumer for the LMR types given (--lmr-type may be\n"
	       "repeated; \"*\" takes every type).  Each payload is checked against its\n"
	       "SHA-256 fingerprint and then written to DIR/<id>.bin (mode 0600,\n"
	       "synced) or piped to CMD, run by /bin/sh -c with LMRSEC_ID,\n"
	       "LMRSEC_LMR_TYPE, LMRSEC_KMF_URI, LMRSEC_MC_SERVICE_ID, LMRSEC_SENDER\n"
	       "and LMRSEC_FINGERPRINT set and its stdout sent to stderr.  The message\n"
	       "is ACKed only after the write succeeded or CMD exited 0; otherwise it\n"
	       "is NACKed (it stays in the agent's spool) and receive exits 1.\n"
	       "One line per message (--json: one JSON object per line).\n"
	       "\n"
	       "  --lmr-type T    LMR type to take (repeatable, or \"*\")\n"
	       "  --count N       stop after N messages\n"
	       "  --timeout S     stop after S seconds without a message\n"
	       "                  (default: wait forever)\n"
	       "  --takeover      replace the consumer that holds a type now\n"
	       "  --output DIR    write each payload to DIR/<id>.bin\n"
	       "  --exec CMD      pipe each payload to CMD\n"
	       CLI_GLOBAL_HELP
	       "\n"
	       "Exits 0 after N messages (or, without --count, after at least one),\n"
	       "4 when the timeout ends the wait first, 1 on any failure.\n");
}

/* ---------- arguments ---------- */

static int receive_add_type(const struct cli *cli, struct receive_args *a,
			    const char *type)
{
	if (strcmp(type, "*") != 0 && !lmrsec_lmr_type_valid(type))
		return cli_usage_error(cli, "--lmr-type wants \"*\" or 1 to 16 of A-Z a-z 0-9 _ -, not '%s'",
				       type);

	if (a->n_types == RECEIVE_MAX_TYPES)
		return cli_usage_error(cli, "at most %d --lmr-type", RECEIVE_MAX_TYPES);

	a->types[a->n_types++] = type;
	return 0;
}

static int receive_option(struct cli *cli, struct receive_args *a, int opt)
{
	switch (opt) {
	case RECEIVE_OPT_LMR_TYPE:
		return receive_add_type(cli, a, optarg);
	case RECEIVE_OPT_COUNT:
		if (cli_parse_count(optarg, &a->count) < 0)
			return cli_usage_error(cli, "--count wants a number > 0, not '%s'", optarg);
		return 0;
	case RECEIVE_OPT_TIMEOUT:
		return cli_parse_timeout(cli, optarg, &a->timeout_ms);
	case RECEIVE_OPT_OUTPUT:
		a->output_dir = optarg;
		return 0;
	case RECEIVE_OPT_EXEC:
		a->exec_cmd = optarg;
		return 0;
	case RECEIVE_OPT_TAKEOVER:
		a->takeover = true;
		return 0;
	default:
		return CLI_EXIT_USAGE;
	}
}

/* 0 to go on, -1 after --help, else the exit code of a usage error. */
static int receive_parse(struct cli *cli, int argc, char **argv,
			 struct receive_args *a)
{
	static const struct option options[] = {
		CLI_GLOBAL_LONG_OPTIONS,
		{ "lmr-type", required_argument, NULL, RECEIVE_OPT_LMR_TYPE },
		{ "count", required_argument, NULL, RECEIVE_OPT_COUNT },
		{ "timeout", required_argument, NULL, RECEIVE_OPT_TIMEOUT },
		{ "output", required_argument, NULL, RECEIVE_OPT_OUTPUT },
		{ "exec", required_argument, NULL, RECEIVE_OPT_EXEC },
		{ "takeover", no_argument, NULL, RECEIVE_OPT_TAKEOVER },
		{ NULL, 0, NULL, 0 },
	};
	int opt, e;

	while ((opt = cli_getopt(cli, argc, argv, ":h", options)) != -1) {
		if (cli_global_option(cli, opt, optarg))
			continue;

		if (opt == 'h') {
			receive_usage();
			return -1;
		}

		e = receive_option(cli, a, opt);
		if (e)
			return e;
	}

	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (a->n_types == 0)
		return cli_usage_error(cli, "--lmr-type is required");
	if (!a->output_dir == !a->exec_cmd)
		return cli_usage_error(cli, "give one of --output DIR and --exec CMD");
	if (a->exec_cmd && !a->exec_cmd[0])
		return cli_usage_error(cli, "--exec wants a command");

	return 0;
}

/* ---------- storing a payload in DIR/<id>.bin ---------- */

static int write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;

		p += n;
		len -= (size_t) n;
	}

	return 0;
}

/* A redelivery of a message already written (the ACK was lost): the file
 * is there with the same bytes, and that counts as written. */
static bool file_holds(int dirfd, const char *name, const struct lmrsec_delivery *d)
{
	uint8_t *buf;
	struct stat st;
	bool same = false;
	ssize_t n;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;

	buf = malloc(d->payload_len ? d->payload_len : 1);
	if (buf && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t) st.st_size == d->payload_len) {
		n = pread(fd, buf, d->payload_len, 0);
		same = n >= 0 && (size_t) n == d->payload_len &&
		       memcmp(buf, d->payload, d->payload_len) == 0;
	}

	if (buf) {
		explicit_bzero(buf, d->payload_len);
		free(buf);
	}
	close(fd);
	return same;
}

/* Creates, writes and syncs the file, then the directory: the payload must
 * be on disk, under its name, before the ACK lets the agent drop it. */
static int store_payload(const struct sink *s, const struct lmrsec_delivery *d,
			 char *why)
{
	char name[RECEIVE_FILE_NAME_MAX];
	int fd, e;

	snprintf(name, sizeof(name), "%" PRIu64 ".bin", d->id);
	fd = openat(s->dirfd, name,
		    O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) {
		if (file_holds(s->dirfd, name, d))
			return 0;

		snprintf(why, RECEIVE_WHY_MAX, "%s/%s exists with other content",
			 s->dir, name);
		return -1;
	}

	if (fd < 0) {
		snprintf(why, RECEIVE_WHY_MAX, "cannot create %s/%s: %s", s->dir,
			 name, strerror(errno));
		return -1;
	}

	e = write_all(fd, d->payload, d->payload_len);
	if (e == 0 && fsync(fd) < 0)
		e = -errno;
	if (close(fd) < 0 && e == 0)
		e = -errno;
	if (e == 0 && fsync(s->dirfd) < 0)
		e = -errno;

	if (e < 0) {
		snprintf(why, RECEIVE_WHY_MAX, "cannot write %s/%s: %s", s->dir,
			 name, strerror(-e));
		unlinkat(s->dirfd, name, 0);	/* so a redelivery can try again */
		return -1;
	}

	return 0;
}

/* ---------- piping a payload to a command ---------- */

static void exec_child(const char *cmd, int in, const struct lmrsec_delivery *d,
		       const char *hex)
{
	char id[24];

	snprintf(id, sizeof(id), "%" PRIu64, d->id);
	if (dup2(in, STDIN_FILENO) < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
		_exit(127);
	if (in == STDIN_FILENO)
		fcntl(STDIN_FILENO, F_SETFD, 0);	/* dup2 kept CLOEXEC */

	/* An ignored SIGPIPE would be inherited across exec. */
	signal(SIGPIPE, SIG_DFL);
	if (setenv("LMRSEC_ID", id, 1) < 0 ||
	    setenv("LMRSEC_LMR_TYPE", d->lmr_type, 1) < 0 ||
	    setenv("LMRSEC_KMF_URI", d->kmf_uri, 1) < 0 ||
	    setenv("LMRSEC_MC_SERVICE_ID", d->mc_service_id, 1) < 0 ||
	    setenv("LMRSEC_SENDER", d->sender, 1) < 0 ||
	    setenv("LMRSEC_FINGERPRINT", hex, 1) < 0)
		_exit(127);

	execl("/bin/sh", "sh", "-c", cmd, (char *) NULL);
	_exit(127);
}

static int wait_child(pid_t pid, const char *cmd, char *why)
{
	int status;

	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			snprintf(why, RECEIVE_WHY_MAX, "waiting for '%s': %s", cmd,
				 strerror(errno));
			return -1;
		}
	}

	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;

	if (WIFEXITED(status))
		snprintf(why, RECEIVE_WHY_MAX, "'%s' exited with status %d", cmd,
			 WEXITSTATUS(status));
	else
		snprintf(why, RECEIVE_WHY_MAX, "'%s' was killed by signal %d", cmd,
			 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return -1;
}

static int run_command(const struct sink *s, const struct lmrsec_delivery *d,
		       const char *hex, char *why)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(why, RECEIVE_WHY_MAX, "pipe: %s", strerror(errno));
		return -1;
	}

	pid = fork();
	if (pid < 0) {
		snprintf(why, RECEIVE_WHY_MAX, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}

	if (pid == 0)
		exec_child(s->cmd, p[0], d, hex);

	close(p[0]);
	/* A command that exits without reading all is judged by its status. */
	write_all(p[1], d->payload, d->payload_len);
	close(p[1]);
	return wait_child(pid, s->cmd, why);
}

/* ---------- the consumer loop ---------- */

static void report(const struct cli *cli, const struct sink *s,
		   const struct lmrsec_delivery *d, const char *hex)
{
	char path[4096], type[64];
	struct json j;

	if (!cli->json) {
		snprintf(type, sizeof(type), "%s", d->lmr_type);
		printf("id=%" PRIu64 " lmr-type=%s size=%zu sha256=%s\n",
		       d->id, cli_scrub(type), d->payload_len, hex);
		fflush(stdout);
		return;
	}

	json_begin(&j, stdout);
	json_uint(&j, "id", d->id);
	json_string(&j, "lmr_type", d->lmr_type);
	json_string(&j, "kmf_uri", d->kmf_uri);
	json_string(&j, "mc_service_id", d->mc_service_id);
	json_string(&j, "sender", d->sender);
	json_uint(&j, "received_us", d->received_us);
	json_uint(&j, "size", d->payload_len);
	json_string(&j, "sha256", hex);
	if (s->dir) {
		snprintf(path, sizeof(path), "%s/%" PRIu64 ".bin", s->dir, d->id);
		json_string(&j, "file", path);
	}
	json_end(&j);
}

/* Hands one payload on and ACKs it, or NACKs it and says why. */
static int receive_one(const struct cli *cli, const struct sink *s,
		       struct lmrsec *c, const struct lmrsec_delivery *d)
{
	char hex[65], why[RECEIVE_WHY_MAX];
	int e;

	lmrsec_fingerprint_hex(d->fingerprint, hex);
	if (lmrsec_delivery_verify(d) < 0) {
		snprintf(why, sizeof(why), "the payload does not match its "
			 "SHA-256 fingerprint %s", hex);
		e = -1;
	} else if (s->dirfd >= 0) {
		e = store_payload(s, d, why);
	} else {
		e = run_command(s, d, hex, why);
	}

	if (e < 0) {
		/* The agent keeps it either way; the NACK offers it again sooner. */
		lmrsec_nack(c, d->id, CLI_REQUEST_TIMEOUT_MS);
		cli_error(cli, "message %" PRIu64 " NACKed: %s", d->id, why);
		return CLI_EXIT_FAILED;
	}

	e = lmrsec_ack(c, d->id, CLI_REQUEST_TIMEOUT_MS);
	if (e < 0)
		return cli_fail(cli, c, e, "ack");

	report(cli, s, d, hex);
	return CLI_EXIT_OK;
}

/* The exit status once the loop has stopped (DESIGN §5). */
static int receive_outcome(const struct cli *cli, const struct receive_args *a,
			   uint64_t got, bool timed_out)
{
	if (a->count ? got >= a->count : got > 0)
		return CLI_EXIT_OK;

	if (timed_out) {
		cli_error(cli, "timed out after %" PRIu64 " message%s", got,
			  got == 1 ? "" : "s");
		return CLI_EXIT_TIMEOUT;
	}

	cli_error(cli, "interrupted after %" PRIu64 " message%s", got,
		  got == 1 ? "" : "s");
	return CLI_EXIT_FAILED;
}

static int receive_loop(const struct cli *cli, const struct receive_args *a,
			const struct sink *s, struct lmrsec *c)
{
	int64_t idle_deadline = cli_deadline(a->timeout_ms);
	struct lmrsec_delivery *d;
	bool timed_out = false;
	uint64_t got = 0;
	int wait, e;

	while (!cli_stop_requested() && (!a->count || got < a->count)) {
		wait = RECEIVE_TICK_MS;
		if (a->timeout_ms >= 0 && cli_time_left(idle_deadline) < wait)
			wait = cli_time_left(idle_deadline);

		e = lmrsec_next_delivery(c, &d, wait);
		if (e == -ETIMEDOUT || e == -EINTR) {
			if (a->timeout_ms >= 0 && cli_time_left(idle_deadline) == 0) {
				timed_out = true;
				break;
			}
			continue;
		}
		if (e < 0)
			return cli_fail(cli, c, e, NULL);

		e = receive_one(cli, s, c, d);
		lmrsec_delivery_free(d);
		if (e)
			return e;

		got++;
		idle_deadline = cli_deadline(a->timeout_ms);
	}

	return receive_outcome(cli, a, got, timed_out);
}

static int sink_open(const struct cli *cli, const struct receive_args *a,
		     struct sink *s)
{
	s->dir = a->output_dir;
	s->cmd = a->exec_cmd;
	s->dirfd = -1;
	if (!s->dir)
		return 0;

	s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		cli_error(cli, "cannot open the output directory %s: %s", s->dir,
			  strerror(errno));
		return CLI_EXIT_FAILED;
	}

	return 0;
}

int cmd_receive(struct cli *cli, int argc, char **argv)
{
	struct receive_args a = { .timeout_ms = -1 };
	struct sink s;
	struct lmrsec *c;
	int setup_ms, e;

	e = receive_parse(cli, argc, argv, &a);
	if (e)
		return e < 0 ? CLI_EXIT_OK : e;

	/* Take no message before there is somewhere to put it. */
	e = sink_open(cli, &a, &s);
	if (e)
		return e;

	setup_ms = a.timeout_ms >= 0 && a.timeout_ms < CLI_REQUEST_TIMEOUT_MS ?
		   a.timeout_ms : CLI_REQUEST_TIMEOUT_MS;
	e = cli_connect(cli, setup_ms, &c);
	if (e)
		goto out;

	e = lmrsec_subscribe(c, a.types, a.takeover, setup_ms);
	if (e < 0) {
		e = cli_fail(cli, c, e, "subscribe");
	} else {
		cli_catch_stop_signals();
		e = receive_loop(cli, &a, &s, c);
	}

	lmrsec_close(c);
out:
	if (s.dirfd >= 0)
		close(s.dirfd);
	return e;
}
