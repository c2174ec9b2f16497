/*
 * lmrsec-agent — start, wire, signals, stop.
 *
 * main.c is the only place that knows every room: it loads the
 * configuration, opens the spool, builds the broker and connects the two
 * adapters to it (the key-delivery socket and the SIP stack).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>
#include <glib/gstdio.h>

#include "broker.h"
#include "config.h"
#include "creds.h"
#include "log.h"
#include "notify.h"
#include "reload.h"
#include "server.h"
#include "sip.h"
#include "spool.h"
#include "trace.h"

#define AGENT_NAME "lmrsec-agent"
#define SYSTEM_CONFIG CONFIG_SYSTEM_PATH
#define SYSTEM_SOCKET "/run/lmrsec/agent.sock"
#define SYSTEM_STATE_DIR "/var/lib/lmrsec"
#define INSTANCE_FILE "instance-id"
#define SPOOL_FILE "spool.db"
#define LOCK_FILE "lock"

struct agent {
	struct lmrsec_config *cfg;
	char *config_path;
	char *socket_path;
	char *state_dir;
	char *instance_urn;
	struct broker *broker;
	struct server *server;
	struct sip *sip;
	GMainLoop *loop;
	int lock_fd;
	bool stopping;
};

struct options {
	char *config;
	char *socket;
	bool verbose;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " AGENT_NAME " [--config FILE] [--socket PATH] [--foreground] [--verbose]\n"
		"\n"
		"Receives LMR key management messages over SIP and hands them to the\n"
		"LMR crypto applications over a local socket (see lmrsec-agent(8)).\n"
		"\n"
		"  -c, --config FILE   configuration file (default " SYSTEM_CONFIG " as root,\n"
		"                      $XDG_CONFIG_HOME/lmrsec/agent.conf otherwise)\n"
		"  -s, --socket PATH   key-delivery socket (overrides the file and $LMRSEC_SOCKET)\n"
		"  -f, --foreground    accepted for compatibility: the agent never forks\n"
		"  -v, --verbose       log debug messages\n"
		"  -V, --version       print the version and exit\n"
		"  -h, --help          print this help and exit\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:s:fvVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 's':
			o->socket = optarg;
			break;
		case 'f':
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'V':
			printf(AGENT_NAME " " PACKAGE_VERSION "\n");
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, AGENT_NAME ": unexpected argument \"%s\"\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static bool system_mode(void)
{
	return geteuid() == 0;
}

static char *default_config_path(void)
{
	return config_default_path();  /* shared with lmrsecctl credentials */
}

static char *default_socket_path(void)
{
	const char *env = g_getenv("LMRSEC_SOCKET");
	const char *systemd_dir = g_getenv("RUNTIME_DIRECTORY");  /* RuntimeDirectory= */

	if (env && *env)
		return g_strdup(env);
	if (systemd_dir && *systemd_dir && !strchr(systemd_dir, ':'))
		return g_build_filename(systemd_dir, "agent.sock", NULL);
	if (system_mode())
		return g_strdup(SYSTEM_SOCKET);
	return g_build_filename(g_get_user_runtime_dir(), "lmrsec", "agent.sock", NULL);
}

static char *default_state_dir(void)
{
	const char *systemd_dir = g_getenv("STATE_DIRECTORY");  /* StateDirectory= */

	if (systemd_dir && *systemd_dir && !strchr(systemd_dir, ':'))
		return g_strdup(systemd_dir);
	if (system_mode())
		return g_strdup(SYSTEM_STATE_DIR);
	return g_build_filename(g_get_user_state_dir(), "lmrsec", NULL);
}

/* Key material must never end up in a core file. */
static void forbid_core_dumps(void)
{
	struct rlimit none = { 0, 0 };

	setrlimit(RLIMIT_CORE, &none);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

static int prepare_state_dir(const char *dir, char **error)
{
	if (g_mkdir_with_parents(dir, 0700) < 0) {
		*error = g_strdup_printf("%s: cannot create state directory: %s", dir,
					 g_strerror(errno));
		return -errno;
	}
	if (chmod(dir, 0700) < 0) {
		*error = g_strdup_printf("%s: cannot set mode 0700: %s", dir, g_strerror(errno));
		return -errno;
	}
	return 0;
}

/* One agent per state directory: two would deliver the same spool twice. */
static int lock_state_dir(struct agent *a, char **error)
{
	g_autofree char *path = g_build_filename(a->state_dir, LOCK_FILE, NULL);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0) {
		*error = g_strdup_printf("%s: cannot open: %s", path, g_strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;

		close(fd);
		*error = g_strdup_printf("%s: another lmrsec-agent is using this state directory",
					 a->state_dir);
		return err == EWOULDBLOCK ? -EBUSY : -err;
	}
	a->lock_fd = fd;
	return 0;
}

/* The +sip.instance UUID: generated once, then kept in the state dir. */
static int load_instance(struct agent *a, char **error)
{
	g_autofree char *path = g_build_filename(a->state_dir, INSTANCE_FILE, NULL);
	g_autofree char *text = NULL;
	g_autoptr(GError) err = NULL;

	if (a->cfg->identity.instance_id) {
		a->instance_urn = g_strdup(a->cfg->identity.instance_id);
		return 0;
	}
	if (g_file_get_contents(path, &text, NULL, NULL)) {
		g_strstrip(text);
		if (g_uuid_string_is_valid(text)) {
			a->instance_urn = g_strdup_printf("urn:uuid:%s", text);
			return 0;
		}
		g_warning("%s: not a UUID, generating a new instance ID", path);
	}
	g_free(text);
	text = g_uuid_string_random();
	if (!g_file_set_contents_full(path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT,
				      0600, &err)) {
		*error = g_strdup_printf("%s: cannot store instance ID: %s", path, err->message);
		return -EIO;
	}
	a->instance_urn = g_strdup_printf("urn:uuid:%s", text);
	return 0;
}

static int open_broker(struct agent *a, char **error)
{
	g_autofree char *path = g_build_filename(a->state_dir, SPOOL_FILE, NULL);
	const struct config_delivery *d = &a->cfg->delivery;
	struct broker_limits limits = {
		.ack_mode = d->ack_mode == CONFIG_ACK_MODE_DELIVERED ? BROKER_ACK_DELIVERED
								     : BROKER_ACK_STORED,
		.delivery_timeout_s = d->delivery_timeout,
		.max_messages = d->spool_max_messages,
		.max_bytes = d->spool_max_bytes,
		.message_ttl_s = d->message_ttl,
	};
	struct spool *spool;
	int r;

	r = spool_open(path, &spool, error);
	if (r < 0)
		return r;
	if (spool_warning(spool))
		g_warning("%s", spool_warning(spool));
	return broker_new(spool, &limits, &a->broker, error);
}

#define SD_LISTEN_FDS_START 3

/* systemd socket activation: LISTEN_PID names this process and LISTEN_FDS
 * counts the sockets passed from fd 3 on.  The variables are unset either
 * way, so no child takes them for its own.  0 with *fd = -1 when the agent
 * was not activated, 0 with *fd = 3, or -EINVAL for more than one socket. */
static int listen_fd_from_systemd(int *fd, char **error)
{
	const char *pid_text = g_getenv("LISTEN_PID");
	const char *fds_text = g_getenv("LISTEN_FDS");
	guint64 pid, n;
	int r = 0;

	*fd = -1;
	if (!pid_text || !fds_text ||
	    !g_ascii_string_to_unsigned(pid_text, 10, 1, G_MAXINT, &pid, NULL) ||
	    (pid_t) pid != getpid())
		goto out;	/* not activated, or meant for another process */

	if (!g_ascii_string_to_unsigned(fds_text, 10, 0, G_MAXINT, &n, NULL) || n > 1) {
		*error = g_strdup_printf("LISTEN_FDS=%s: socket activation must pass "
					 "exactly one socket", fds_text);
		r = -EINVAL;
	} else if (n == 1) {
		*fd = SD_LISTEN_FDS_START;
	}

out:
	g_unsetenv("LISTEN_PID");
	g_unsetenv("LISTEN_FDS");
	g_unsetenv("LISTEN_FDNAMES");
	return r;
}

/* The path systemd bound, for log lines. */
static char *socket_name(int fd)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);

	memset(&sa, 0, sizeof(sa));
	if (getsockname(fd, (struct sockaddr *) &sa, &len) == 0 &&
	    sa.sun_family == AF_UNIX && len > offsetof(struct sockaddr_un, sun_path) &&
	    sa.sun_path[0])
		return g_strndup(sa.sun_path, len - offsetof(struct sockaddr_un, sun_path));
	return g_strdup("the socket from systemd");
}

static int start_server(struct agent *a, const char *socket_override, char **error)
{
	struct server_config sc = {
		.group = a->cfg->socket.group,
		.allowed_users = a->cfg->socket.allowed_users,
		.allowed_groups = a->cfg->socket.allowed_groups,
		.listen_fd = -1,
		.agent_version = PACKAGE_VERSION,
		.max_connections = a->cfg->socket.max_connections,
		.frame_timeout_ms = a->cfg->socket.frame_timeout * 1000u,
	};
	int r;

	r = listen_fd_from_systemd(&sc.listen_fd, error);
	if (r < 0)
		return r;
	if (sc.listen_fd >= 0) {
		a->socket_path = socket_name(sc.listen_fd);
		return server_start(&sc, a->broker, &a->server, error);
	}

	if (socket_override)
		a->socket_path = g_strdup(socket_override);
	else if (g_getenv("LMRSEC_SOCKET") && *g_getenv("LMRSEC_SOCKET"))
		a->socket_path = g_strdup(g_getenv("LMRSEC_SOCKET"));
	else if (a->cfg->socket.path)
		a->socket_path = g_strdup(a->cfg->socket.path);
	else
		a->socket_path = default_socket_path();
	sc.path = a->socket_path;
	return server_start(&sc, a->broker, &a->server, error);
}

static int start_sip(struct agent *a, const char *password, char **error)
{
	int r;

	r = sip_start(a->cfg, password, a->instance_urn, a->broker, &a->sip, error);
	if (r == 0)
		broker_set_sip(a->broker, &sip_broker_ops, a->sip);
	return r;
}

/* --- operator requests: the socket side asks, the SIP side and the log answer --- */

/* A SIP message for `lmrsecctl trace`, sanitised once for every tracer. */
static void on_sip_trace(void *ctx, const struct trace_record *rec, unsigned dropped)
{
	struct agent *a = ctx;
	bool stream = strcmp(rec->transport, "udp") != 0;
	char *text = NULL;

	if (!a->server)
		return;
	if (trace_sanitise(rec->bytes, rec->len, stream, &text) < 0)
		text = strdup("[not shown: out of memory]");
	if (text)
		server_trace(a->server, rec, text, dropped);
	free(text);
}

static void on_trace_switch(void *ctx, bool on)
{
	struct agent *a = ctx;

	if (a->sip)
		sip_set_trace(a->sip, on ? on_sip_trace : NULL, a);
}

static int on_log_level(void *ctx, const char *name, const char **previous,
			const char **current)
{
	enum log_level level;

	(void)ctx;
	*previous = log_level_name(log_get_level());
	if (name) {
		if (log_level_from_name(name, &level) < 0)
			return -EINVAL;
		log_set_level(level);
	}
	*current = log_level_name(log_get_level());
	return 0;
}

static const struct server_operator_ops operator_ops = {
	.trace_switch = on_trace_switch,
	.log_level = on_log_level,
};

static void on_sip_stopped(void *ctx)
{
	struct agent *a = ctx;

	g_main_loop_quit(a->loop);
}

static gboolean on_terminate(gpointer data)
{
	struct agent *a = data;

	if (a->stopping)
		return G_SOURCE_CONTINUE;
	a->stopping = true;
	g_message("stopping: unregistering and shutting down");
	notify_send("STOPPING=1");
	broker_shutdown(a->broker);  /* deferred answers go out before SIP stops */
	if (a->sip)
		sip_shutdown(a->sip, on_sip_stopped, a);
	else
		g_main_loop_quit(a->loop);
	return G_SOURCE_CONTINUE;
}

/* SIGHUP: reload.c applies what it can and logs the rest.  systemd is
 * told (RELOADING=1 with the CLOCK_MONOTONIC time, then READY=1), so
 * `systemctl reload` returns when the reload is done. */
static gboolean on_hangup(gpointer data)
{
	struct agent *a = data;

	if (a->stopping || !a->sip)
		return G_SOURCE_CONTINUE;
	notify_sendf("RELOADING=1\nMONOTONIC_USEC=%" G_GINT64_FORMAT, g_get_monotonic_time());
	reload_apply(a->config_path, &a->cfg, a->sip, a->instance_urn);
	notify_send("READY=1");
	return G_SOURCE_CONTINUE;
}

static int agent_start(struct agent *a, const struct options *o)
{
	g_autofree char *error = NULL;
	char *password = NULL;
	int r;

	a->config_path = o->config ? g_strdup(o->config) : default_config_path();
	r = config_load(a->config_path, &a->cfg, &error);
	for (char **w = a->cfg ? a->cfg->warnings : NULL; w && *w; w++)
		g_warning("%s", *w);
	if (r == 0) {
		a->state_dir = a->cfg->paths.state_dir ? g_strdup(a->cfg->paths.state_dir)
						       : default_state_dir();
		r = prepare_state_dir(a->state_dir, &error);
	}
	if (r == 0)
		r = lock_state_dir(a, &error);
	if (r == 0)  /* first, so a bad password source fails before anything starts */
		r = creds_password(a->cfg, &password, &error);
	if (r == 0)
		r = load_instance(a, &error);
	if (r == 0)
		r = open_broker(a, &error);
	if (r == 0) {  /* before SIP starts, so the first registration change is seen */
		broker_add_observer(a->broker, log_broker_event, NULL);
		broker_add_observer(a->broker, notify_broker_event, NULL);
	}
	if (r == 0)
		r = start_server(a, o->socket, &error);
	if (r == 0)
		r = start_sip(a, password, &error);
	if (r == 0)
		server_set_operator_ops(a->server, &operator_ops, a);
	creds_free(password);
	if (r < 0)
		fprintf(stderr, AGENT_NAME ": %s\n", error ? error : g_strerror(-r));
	return r;
}

static void agent_free(struct agent *a)
{
	if (a->sip)
		sip_set_trace(a->sip, NULL, NULL);
	if (a->server)
		server_stop(a->server);
	if (a->broker)
		broker_set_sip(a->broker, NULL, NULL);
	sip_free(a->sip);
	broker_free(a->broker);
	config_free(a->cfg);
	g_free(a->config_path);
	g_free(a->socket_path);
	g_free(a->state_dir);
	g_free(a->instance_urn);
	if (a->loop)
		g_main_loop_unref(a->loop);
	if (a->lock_fd >= 0)
		close(a->lock_fd);
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct agent a = { .lock_fd = -1 };
	int r;

	forbid_core_dumps();
	if (parse_options(argc, argv, &o) < 0)
		return 2;
	log_init(o.verbose);
	spool_global_init();
	sip_global_init();
	a.loop = g_main_loop_new(NULL, FALSE);
	r = agent_start(&a, &o);
	if (r == 0) {
		g_unix_signal_add(SIGTERM, on_terminate, &a);
		g_unix_signal_add(SIGINT, on_terminate, &a);
		g_unix_signal_add(SIGHUP, on_hangup, &a);
		g_message("started: %s, socket %s, state %s", a.cfg->identity.mc_service_id,
			  a.socket_path, a.state_dir);
		notify_send("READY=1");
		notify_watchdog_start();
		g_main_loop_run(a.loop);
		g_message("stopped");
	}
	agent_free(&a);
	return r == 0 ? 0 : 1;
}
