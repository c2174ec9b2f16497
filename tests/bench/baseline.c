/*
 * baseline — the bare sofia-sip stack the agent is measured against
 * (docs/performance.md).  A NUA on the GLib main loop that registers with
 * digest authentication and answers every MESSAGE 200 OK, and does nothing
 * else: no parsing, no storage, no logging per message.  Whatever the agent
 * costs above this program is the agent's own.
 *
 *   baseline --bind 'sip:127.0.0.1:5070;transport=tcp'
 *            --proxy 'sip:127.0.0.1:5060;transport=tcp' --registrar sip:mc.test
 *            --aor sip:base@mc.test --username base --password-file FILE
 *            [--expires 600]
 *
 * The password comes from a file (first line), never from the command line.
 * Prints "registered" on stdout when the first REGISTER succeeds and
 * "answered N" when it stops.  SIGTERM or SIGINT unregisters and exits 0;
 * a refused registration exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <glib-unix.h>

struct baseline;
#define SU_ROOT_MAGIC_T struct baseline
#define NUA_MAGIC_T struct baseline

#include <sofia-sip/msg_header.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_glib.h>
#include <sofia-sip/url.h>

/* Stop even when the registrar never answers the un-REGISTER. */
#define BASELINE_STOP_WAIT_MS 3000
#define BASELINE_PASSWORD_MAX 256

struct baseline_options {
	const char *bind;
	const char *proxy;
	const char *registrar;
	const char *aor;
	const char *username;
	const char *password_file;
	const char *expires;
};

struct baseline {
	struct baseline_options opt;
	char password[BASELINE_PASSWORD_MAX];
	GMainLoop *loop;
	su_root_t *root;
	nua_t *nua;
	nua_handle_t *reg;
	bool auth_tried;        /* for the current REGISTER round */
	bool registered;
	bool announced;
	bool stopping;
	int exit_code;
	unsigned long answered;
};

static void stop_stack(struct baseline *b)
{
	if (b->nua)
		nua_shutdown(b->nua);
}

/* Answers a 401/407 once per REGISTER round; false when already tried. */
static bool authenticate(struct baseline *b, sip_t const *sip)
{
	msg_auth_t const *au = sip && sip->sip_www_authenticate ? sip->sip_www_authenticate
		: sip ? sip->sip_proxy_authenticate : NULL;
	const char *realm = au ? msg_params_find(au->au_params, "realm=") : NULL;
	char *cred;

	if (b->auth_tried || !au || !au->au_scheme || !realm)
		return false;
	b->auth_tried = true;
	cred = g_strdup_printf("%s:%s:%s:%s", au->au_scheme, realm,
			       b->opt.username, b->password);
	nua_authenticate(b->reg, NUTAG_AUTH(cred), TAG_END());
	explicit_bzero(cred, strlen(cred));
	g_free(cred);
	return true;
}

static void on_register(struct baseline *b, int status, char const *phrase, sip_t const *sip)
{
	if (status < 200 || b->stopping)
		return;
	if (status < 300) {
		b->auth_tried = false;  /* the refresh is challenged again */
		b->registered = true;
		if (!b->announced) {
			b->announced = true;
			printf("registered\n");
			fflush(stdout);
		}
		return;
	}
	if ((status == 401 || status == 407) && authenticate(b, sip))
		return;
	fprintf(stderr, "baseline: registration failed: %d %s\n", status, phrase);
	b->exit_code = 1;
	b->stopping = true;
	stop_stack(b);
}

static void on_nua_event(nua_event_t event, int status, char const *phrase,
			 nua_t *nua, struct baseline *b, nua_handle_t *nh,
			 nua_hmagic_t *hmagic, sip_t const *sip, tagi_t tags[])
{
	(void)hmagic;
	(void)tags;
	switch (event) {
	case nua_i_message:
		nua_respond(nh, SIP_200_OK, NUTAG_WITH_THIS(nua), TAG_END());
		nua_handle_destroy(nh);
		b->answered++;
		return;
	case nua_r_register:
		on_register(b, status, phrase, sip);
		return;
	case nua_r_unregister:
		if (status >= 200)
			stop_stack(b);
		return;
	case nua_r_shutdown:
		if (status >= 200)
			g_main_loop_quit(b->loop);
		return;
	default:
		return;
	}
}

static gboolean on_stop_timeout(gpointer data)
{
	struct baseline *b = data;

	fprintf(stderr, "baseline: the stack did not stop in time\n");
	g_main_loop_quit(b->loop);
	return G_SOURCE_REMOVE;
}

static gboolean on_signal(gpointer data)
{
	struct baseline *b = data;

	if (b->stopping)
		return G_SOURCE_CONTINUE;
	b->stopping = true;
	g_timeout_add(BASELINE_STOP_WAIT_MS, on_stop_timeout, b);
	if (b->registered)
		nua_unregister(b->reg, TAG_END());
	else
		stop_stack(b);
	return G_SOURCE_CONTINUE;
}

static int read_password(struct baseline *b)
{
	FILE *f = fopen(b->opt.password_file, "re");

	if (!f) {
		fprintf(stderr, "baseline: %s: %s\n", b->opt.password_file, strerror(errno));
		return -1;
	}
	if (!fgets(b->password, sizeof(b->password), f))
		b->password[0] = '\0';
	fclose(f);
	b->password[strcspn(b->password, "\r\n")] = '\0';
	if (!b->password[0]) {
		fprintf(stderr, "baseline: %s: no password\n", b->opt.password_file);
		return -1;
	}
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: baseline --bind URL --proxy URL --registrar URL --aor URI\n"
		"                --username USER --password-file FILE [--expires S]\n");
}

static int parse_options(int argc, char **argv, struct baseline_options *o)
{
	static const struct option options[] = {
		{ "bind", required_argument, NULL, 'b' },
		{ "proxy", required_argument, NULL, 'p' },
		{ "registrar", required_argument, NULL, 'r' },
		{ "aor", required_argument, NULL, 'a' },
		{ "username", required_argument, NULL, 'u' },
		{ "password-file", required_argument, NULL, 'P' },
		{ "expires", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->expires = "600";
	while ((c = getopt_long(argc, argv, "b:p:r:a:u:P:e:h", options, NULL)) != -1) {
		switch (c) {
		case 'b': o->bind = optarg; break;
		case 'p': o->proxy = optarg; break;
		case 'r': o->registrar = optarg; break;
		case 'a': o->aor = optarg; break;
		case 'u': o->username = optarg; break;
		case 'P': o->password_file = optarg; break;
		case 'e': o->expires = optarg; break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (optind != argc || !o->bind || !o->proxy || !o->registrar || !o->aor ||
	    !o->username || !o->password_file)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct baseline b = { 0 };

	if (parse_options(argc, argv, &b.opt) < 0) {
		usage(stderr);
		return 2;
	}
	if (read_password(&b) < 0)
		return 1;

	su_init();
	b.loop = g_main_loop_new(NULL, FALSE);
	b.root = su_glib_root_create(&b);
	if (!b.root) {
		fprintf(stderr, "baseline: cannot create the su root\n");
		return 1;
	}
	/* Owned by the root: su_root_destroy() releases it. */
	g_source_attach(su_glib_root_gsource(b.root), NULL);
	b.nua = nua_create(b.root, on_nua_event, &b,
			   NUTAG_URL(URL_STRING_MAKE(b.opt.bind)),
			   NUTAG_PROXY(URL_STRING_MAKE(b.opt.proxy)),
			   NUTAG_APPL_METHOD("MESSAGE"),
			   NUTAG_OUTBOUND("no-validate"),
			   NUTAG_M_USERNAME(b.opt.username),
			   TAG_END());
	if (!b.nua) {
		fprintf(stderr, "baseline: cannot bind %s\n", b.opt.bind);
		return 1;
	}
	b.reg = nua_handle(b.nua, NULL, SIPTAG_TO_STR(b.opt.aor),
			   SIPTAG_FROM_STR(b.opt.aor), TAG_END());
	nua_register(b.reg, NUTAG_REGISTRAR(URL_STRING_MAKE(b.opt.registrar)),
		     NUTAG_OUTBOUND("no-validate"),
		     SIPTAG_EXPIRES_STR(b.opt.expires), TAG_END());
	g_unix_signal_add(SIGTERM, on_signal, &b);
	g_unix_signal_add(SIGINT, on_signal, &b);

	g_main_loop_run(b.loop);

	printf("answered %lu\n", b.answered);
	nua_handle_destroy(b.reg);
	nua_destroy(b.nua);
	su_root_destroy(b.root);
	su_deinit();
	g_main_loop_unref(b.loop);
	explicit_bzero(b.password, sizeof(b.password));
	return b.exit_code;
}
