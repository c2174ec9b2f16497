/*
 * cmd-credentials.c — `lmrsecctl credentials set|clear [--config FILE]`:
 * the SIP password in the Secret Service for the identity (mc-service-id,
 * username) of the agent's configuration file (DESIGN §5).
 *
 * The one command that does not talk to the agent: it reads the agent's
 * configuration file with the agent's own parser (agent/config.c) and uses
 * the agent's Secret Service code (agent/secret.c), so both look up the
 * same item.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "creds.h"
#include "secret.h"

/* The password buffer: CREDS_MAX_PASSWORD, its line end and a NUL. */
#define CRED_BUF_SIZE		(CREDS_MAX_PASSWORD + 3)

enum credentials_opt {
	CRED_OPT_CONFIG = CLI_OPT_COMMAND_BASE,
};

enum credentials_action {
	CRED_SET,
	CRED_CLEAR,
};

struct credentials_args {
	enum credentials_action action;
	const char *config;	/* NULL: config_default_path() */
};

static void credentials_usage(void)
{
	printf("Usage: lmrsecctl credentials set|clear [--config FILE]\n"
	       "\n"
	       "Stores (set) or removes (clear) the SIP password in the Secret Service\n"
	       "(e.g. gnome-keyring) for the mc-service-id and username of the agent's\n"
	       "configuration file.  The agent reads it from there with\n"
	       "\"password-source = secret-service\" when it starts or reloads (SIGHUP).\n"
	       "set reads the password from the terminal without echo (twice), or the\n"
	       "first line of stdin when stdin is not a terminal.  This command does not\n"
	       "talk to the agent.\n"
	       "\n"
	       "  --config FILE   the agent's configuration (default " CONFIG_SYSTEM_PATH "\n"
	       "                  as root, else $XDG_CONFIG_HOME/lmrsec/agent.conf)\n"
	       CLI_GLOBAL_HELP
	       "\n"
	       "Exits 0 on success; 1 when the Secret Service is missing, locked or\n"
	       "refuses, the configuration cannot be read, or (clear) nothing was stored.\n");
}

/* 0 to go on, -1 after --help, else the exit code of a usage error. */
static int credentials_parse(struct cli *cli, int argc, char **argv,
			     struct credentials_args *a)
{
	static const struct option options[] = {
		CLI_GLOBAL_LONG_OPTIONS,
		{ "config", required_argument, NULL, CRED_OPT_CONFIG },
		{ NULL, 0, NULL, 0 },
	};
	const char *action = NULL;
	int opt;

	/* the action word may come before or after the options */
	while ((opt = cli_getopt(cli, argc, argv, ":h", options)) != -1) {
		if (cli_global_option(cli, opt, optarg))
			continue;

		switch (opt) {
		case 'h':
			credentials_usage();
			return -1;
		case CRED_OPT_CONFIG:
			a->config = optarg;
			break;
		default:
			return CLI_EXIT_USAGE;
		}
	}

	if (optind < argc)
		action = argv[optind++];
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (!action)
		return cli_usage_error(cli, "say set or clear");
	if (strcmp(action, "set") == 0)
		a->action = CRED_SET;
	else if (strcmp(action, "clear") == 0)
		a->action = CRED_CLEAR;
	else
		return cli_usage_error(cli, "unknown action '%s' (set or clear)", action);
	if (a->config && !a->config[0])
		return cli_usage_error(cli, "--config wants a file");

	return 0;
}

/* --- reading the password --- */

static struct termios saved_tty;
static volatile sig_atomic_t tty_changed;

/* Echo comes back even when the user interrupts the prompt. */
static void restore_tty(int sig)
{
	if (tty_changed)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* One line from fd into buf (size CRED_BUF_SIZE), line end removed. */
static int read_line(int fd, char *buf, size_t *len)
{
	size_t n = 0;
	ssize_t k;

	while (n < CRED_BUF_SIZE - 1) {
		k = read(fd, buf + n, 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0 || buf[n] == '\n')
			break;
		n++;
	}
	if (n == CRED_BUF_SIZE - 1)
		return -EFBIG;
	if (n && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	*len = n;
	return 0;
}

static int prompt_line(const char *prompt, char *buf, size_t *len)
{
	struct termios quiet;
	int r;

	if (tcgetattr(STDIN_FILENO, &saved_tty) < 0)
		return -errno;
	quiet = saved_tty;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	signal(SIGINT, restore_tty);
	signal(SIGTERM, restore_tty);
	signal(SIGHUP, restore_tty);
	tty_changed = 1;
	/* echo off before the prompt shows, so nothing typed after it echoes */
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	fprintf(stderr, "%s", prompt);
	fflush(stderr);
	r = read_line(STDIN_FILENO, buf, len);
	tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
	tty_changed = 0;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	fputc('\n', stderr);
	return r;
}

/* The password, from the terminal (asked twice) or from stdin. */
static int read_password(const struct cli *cli, const char *user, char *buf)
{
	char again[CRED_BUF_SIZE];
	char prompt[256];
	size_t len = 0, len2 = 0;
	int r;

	if (!isatty(STDIN_FILENO)) {
		r = read_line(STDIN_FILENO, buf, &len);
	} else {
		snprintf(prompt, sizeof(prompt), "SIP password for %s: ", user);
		r = prompt_line(prompt, buf, &len);
		if (r == 0 && len)
			r = prompt_line("The same again: ", again, &len2);
		if (r == 0 && len && (len != len2 || memcmp(buf, again, len) != 0))
			r = -EILSEQ;
		explicit_bzero(again, sizeof(again));
	}
	if (r == -EFBIG)
		cli_error(cli, "the password is longer than %d bytes", CREDS_MAX_PASSWORD);
	else if (r == -EILSEQ)
		cli_error(cli, "the two passwords differ; nothing stored");
	else if (r < 0)
		cli_error(cli, "cannot read the password: %s", strerror(-r));
	else if (len == 0)
		cli_error(cli, "empty password; nothing stored");
	return r < 0 ? r : len == 0 ? -EINVAL : 0;
}

/* --- the command --- */

static int credentials_run(const struct cli *cli, const struct credentials_args *a,
			   const struct lmrsec_config *cfg, const char *path)
{
	const char *id = cfg->identity.mc_service_id, *user = cfg->auth.username;
	char password[CRED_BUF_SIZE];
	char *error = NULL;
	int r;

	if (a->action == CRED_CLEAR) {
		r = secret_clear(id, user, &error);
		if (r == 0)
			printf("removed the SIP password of %s (%s) from the Secret Service\n", user, id);
	} else {
		if (cfg->auth.password_source != CONFIG_PASSWORD_SECRET_SERVICE)
			fprintf(stderr, "%s: %s: note: %s does not say \"password-source = "
				"secret-service\": the agent will not read this password\n",
				cli->prog, cli->command, path);
		if (read_password(cli, user, password) < 0)
			return CLI_EXIT_FAILED;
		r = secret_store(id, user, password, &error);
		explicit_bzero(password, sizeof(password));
		if (r == 0)
			printf("stored the SIP password of %s (%s) in the Secret Service\n", user, id);
	}
	if (r < 0)
		cli_error(cli, "%s", error);
	free(error);
	return r < 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

int cmd_credentials(struct cli *cli, int argc, char **argv)
{
	struct credentials_args a = { .action = CRED_SET };
	struct lmrsec_config *cfg = NULL;
	char *path, *error = NULL;
	int r;

	r = credentials_parse(cli, argc, argv, &a);
	if (r)
		return r < 0 ? CLI_EXIT_OK : r;

	path = a.config ? strdup(a.config) : config_default_path();
	if (!path) {
		cli_error(cli, "out of memory");
		return CLI_EXIT_FAILED;
	}
	r = config_load(path, &cfg, &error);
	if (r < 0) {
		cli_error(cli, "%s", error ? error : strerror(-r));
		free(error);
		free(path);
		return CLI_EXIT_FAILED;
	}
	r = credentials_run(cli, &a, cfg, path);
	config_free(cfg);
	free(path);
	return r;
}
