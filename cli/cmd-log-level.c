/*
 * cmd-log-level.c — `lmrsecctl log-level [LEVEL]`: the agent's log level,
 * shown or changed at run time until the agent stops.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "json.h"

static const char *const levels[] = { "error", "warning", "message", "info", "debug" };

static void log_level_usage(void)
{
	printf("Usage: lmrsecctl log-level [LEVEL] [--json]\n"
	       "\n"
	       "Without LEVEL, prints the agent's log level. With LEVEL (error,\n"
	       "warning, message, info or debug), sets it and prints the previous\n"
	       "and the new level; the agent logs the change. Each level shows its\n"
	       "own lines and the more severe ones; message is the default (debug\n"
	       "with lmrsec-agent --verbose). The level lasts until the agent stops:\n"
	       "a SIGHUP reload keeps it, a restart does not. Setting it is for the\n"
	       "agent's own user and root only.\n"
	       "\n"
	       CLI_GLOBAL_HELP
	       "\n"
	       "Exits 0 on success, 1 when the agent refuses, 2 for an unknown level.\n");
}

static bool level_known(const char *level)
{
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcmp(level, levels[i]) == 0)
			return true;
	return false;
}

static int log_level_parse(struct cli *cli, int argc, char **argv, const char **level)
{
	static const struct option options[] = {
		CLI_GLOBAL_LONG_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	while ((opt = cli_getopt(cli, argc, argv, ":h", options)) != -1) {
		if (cli_global_option(cli, opt, optarg))
			continue;
		if (opt == 'h') {
			log_level_usage();
			return -1;
		}
		return CLI_EXIT_USAGE;
	}

	if (optind < argc)
		*level = argv[optind++];
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (*level && !level_known(*level))
		return cli_usage_error(cli, "unknown log level '%s' (error, warning, message, "
				       "info or debug)", *level);
	return 0;
}

int cmd_log_level(struct cli *cli, int argc, char **argv)
{
	struct lmrsec_log_level out;
	const char *level = NULL;
	struct lmrsec *c;
	struct json j;
	int e;

	e = log_level_parse(cli, argc, argv, &level);
	if (e)
		return e < 0 ? CLI_EXIT_OK : e;

	e = cli_connect(cli, CLI_REQUEST_TIMEOUT_MS, &c);
	if (e)
		return e;

	e = lmrsec_log_level(c, level, &out, CLI_REQUEST_TIMEOUT_MS);
	if (e < 0) {
		e = cli_fail(cli, c, e, level ? "cannot set the log level"
					      : "cannot read the log level");
		lmrsec_close(c);
		return e;
	}
	lmrsec_close(c);

	if (cli->json) {
		json_begin(&j, stdout);
		json_string(&j, "level", out.current);
		if (level)
			json_string(&j, "previous", out.previous);
		json_end(&j);
	} else if (level) {
		printf("log level %s (was %s)\n", cli_scrub(out.current), cli_scrub(out.previous));
	} else {
		printf("log level %s\n", cli_scrub(out.current));
	}
	return CLI_EXIT_OK;
}
