/*
 * reload — SIGHUP (see reload.h).
 */
#include <errno.h>
#include <stdbool.h>

#include <glib.h>

#include "creds.h"
#include "reload.h"

static void report(const char *path, const char *group, const char *key)
{
	g_warning("SIGHUP: %s: [%s] %s: changed, but it applies only at start; "
		  "the running value stays until the agent is restarted", path, group, key);
}

static void keep_str(const char *path, const char *group, const char *key,
		     char **running, char **next)
{
	char *tmp = *next;

	if (!g_strcmp0(*running, *next))
		return;
	report(path, group, key);
	*next = *running;
	*running = tmp;
}

static bool strv_same(char **a, char **b)
{
	if (!a || !b)
		return (!a || !*a) && (!b || !*b);
	return g_strv_equal((const char *const *)a, (const char *const *)b);
}

static void keep_strv(const char *path, const char *group, const char *key,
		      char ***running, char ***next)
{
	char **tmp = *next;

	if (strv_same(*running, *next))
		return;
	report(path, group, key);
	*next = *running;
	*running = tmp;
}

static void keep_uint(const char *path, const char *group, const char *key,
		      const unsigned *running, unsigned *next)
{
	if (*running == *next)
		return;
	report(path, group, key);
	*next = *running;
}

/* Gives next the running value of every key that applies only at start,
 * logging one line for each that differs. */
static void keep_start_only(const char *path, struct lmrsec_config *running,
			    struct lmrsec_config *next)
{
	struct config_socket *rs = &running->socket, *ns = &next->socket;
	struct config_delivery *rd = &running->delivery, *nd = &next->delivery;

	keep_str(path, "identity", "instance-id", &running->identity.instance_id,
		 &next->identity.instance_id);
	keep_str(path, "socket", "path", &rs->path, &ns->path);
	keep_str(path, "socket", "group", &rs->group, &ns->group);
	keep_strv(path, "socket", "allowed-users", &rs->allowed_users, &ns->allowed_users);
	keep_strv(path, "socket", "allowed-groups", &rs->allowed_groups, &ns->allowed_groups);
	keep_uint(path, "socket", "max-connections", &rs->max_connections, &ns->max_connections);
	keep_uint(path, "socket", "frame-timeout", &rs->frame_timeout, &ns->frame_timeout);
	keep_str(path, "paths", "state-dir", &running->paths.state_dir, &next->paths.state_dir);
	if (rd->ack_mode != nd->ack_mode) {
		report(path, "delivery", "ack-mode");
		nd->ack_mode = rd->ack_mode;
	}
	keep_uint(path, "delivery", "delivery-timeout", &rd->delivery_timeout, &nd->delivery_timeout);
	keep_uint(path, "delivery", "spool-max-messages", &rd->spool_max_messages,
		  &nd->spool_max_messages);
	keep_uint(path, "delivery", "spool-max-bytes", &rd->spool_max_bytes, &nd->spool_max_bytes);
	keep_uint(path, "delivery", "message-ttl", &rd->message_ttl, &nd->message_ttl);
}

int reload_apply(const char *path, struct lmrsec_config **cfg, struct sip *sip,
		 const char *instance_urn)
{
	struct lmrsec_config *next = NULL;
	g_autofree char *error = NULL;
	char *password = NULL;
	int r;

	g_message("SIGHUP: reading %s again", path);
	r = config_load(path, &next, &error);
	if (r < 0) {
		g_warning("SIGHUP: %s; keeping the running configuration",
			  error ? error : g_strerror(-r));
		return r;
	}
	for (char **w = next->warnings; w && *w; w++)
		g_warning("%s", *w);
	r = creds_password(next, &password, &error);
	if (r == 0) {
		/* SIP copies what it uses: next may go on failure, *cfg after */
		r = sip_reconfigure(sip, next, password, instance_urn, &error);
		creds_free(password);
	}
	if (r < 0) {
		g_warning("SIGHUP: %s: %s; keeping the running configuration", path, error);
		config_free(next);
		return r;
	}
	keep_start_only(path, *cfg, next);
	g_message("SIGHUP: %s applied%s", path,
		  r > 0 ? "; registering again with the new settings" : ", SIP settings unchanged");
	config_free(*cfg);
	*cfg = next;
	return 0;
}
