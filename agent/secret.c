/*
 * secret — the SIP password in the Secret Service (see secret.h).
 *
 * Each operation opens its own SecretService on a private main context,
 * runs libsecret's asynchronous calls there one after the other and cancels
 * whatever is pending at the deadline; the caller's main loop (the agent's)
 * is never entered.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#include <libsecret/secret.h>

#include "secret.h"

/* After the deadline a cancelled call must return within this, or it is
 * abandoned (its few bytes are leaked rather than risked). */
#define SECRET_CANCEL_GRACE_MS 1000

static const SecretSchema sip_schema = {
	.name = SECRET_SCHEMA_NAME,
	.flags = SECRET_SCHEMA_NONE,
	.attributes = {
		{ "mc-service-id", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ "username", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ NULL, 0 },
	},
};

/* One operation: its context, its deadline, the result of the call in
 * flight.  Heap-allocated, so a call that never returns can keep it. */
struct secret_session {
	GMainContext *ctx;
	GCancellable *cancel;
	GSource *deadline;
	GSource *grace;
	GAsyncResult *result;
	bool timed_out;
	bool abandoned;
	SecretService *service;
	GHashTable *attributes;
};

static int fail(char **error, int err, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static int fail(char **error, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	*error = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	return err;
}

static void on_result(GObject *source, GAsyncResult *result, gpointer data)
{
	struct secret_session *ss = data;

	(void)source;
	ss->result = g_object_ref(result);
}

static gboolean on_deadline(gpointer data)
{
	struct secret_session *ss = data;

	ss->timed_out = true;
	g_cancellable_cancel(ss->cancel);
	return G_SOURCE_REMOVE;
}

static gboolean on_grace_over(gpointer data)
{
	struct secret_session *ss = data;

	ss->abandoned = true;
	return G_SOURCE_REMOVE;
}

static GSource *add_timer(struct secret_session *ss, guint ms, GSourceFunc fn)
{
	GSource *src = g_timeout_source_new(ms);

	g_source_set_callback(src, fn, ss, NULL);
	g_source_attach(src, ss->ctx);
	return src;
}

/* Runs the context until the call in flight returns; NULL when it did not
 * even after being cancelled (the session is then abandoned). */
static GAsyncResult *session_wait(struct secret_session *ss)
{
	GAsyncResult *result;

	while (!ss->result && !ss->abandoned)
		g_main_context_iteration(ss->ctx, TRUE);
	result = ss->result;
	ss->result = NULL;
	return result;
}

static struct secret_session *session_new(const char *mc_service_id, const char *username)
{
	struct secret_session *ss = g_new0(struct secret_session, 1);

	ss->ctx = g_main_context_new();
	ss->cancel = g_cancellable_new();
	g_main_context_push_thread_default(ss->ctx);
	ss->deadline = add_timer(ss, SECRET_TIMEOUT_MS, on_deadline);
	ss->grace = add_timer(ss, SECRET_TIMEOUT_MS + SECRET_CANCEL_GRACE_MS, on_grace_over);
	ss->attributes = g_hash_table_new(g_str_hash, g_str_equal);
	g_hash_table_insert(ss->attributes, "mc-service-id", (gpointer)mc_service_id);
	g_hash_table_insert(ss->attributes, "username", (gpointer)username);
	return ss;
}

static void session_free(struct secret_session *ss)
{
	g_main_context_pop_thread_default(ss->ctx);
	if (ss->abandoned)
		return;  /* a callback may still come: everything stays */
	g_source_destroy(ss->deadline);
	g_source_unref(ss->deadline);
	g_source_destroy(ss->grace);
	g_source_unref(ss->grace);
	if (ss->service)
		g_object_unref(ss->service);
	g_hash_table_unref(ss->attributes);
	g_object_unref(ss->cancel);
	/* let libsecret's and GDBus's own idle work on this context finish */
	while (g_main_context_iteration(ss->ctx, FALSE))
		;
	g_main_context_unref(ss->ctx);
	g_free(ss);
}

/* One line for a failed call: which of "no bus", "no service", "locked",
 * "no answer" it was. */
static int classify(struct secret_session *ss, GError *e, char **error)
{
	int r;

	if (ss->timed_out || !e)
		r = fail(error, -ETIMEDOUT, "the Secret Service did not answer within %d s",
			 SECRET_TIMEOUT_MS / 1000);
	else if (g_error_matches(e, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
		 g_error_matches(e, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER) ||
		 g_error_matches(e, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT) ||
		 g_error_matches(e, G_DBUS_ERROR, G_DBUS_ERROR_SPAWN_FAILED) ||
		 g_error_matches(e, G_DBUS_ERROR, G_DBUS_ERROR_SPAWN_EXEC_FAILED) ||
		 g_error_matches(e, G_DBUS_ERROR, G_DBUS_ERROR_SPAWN_CHILD_EXITED))
		r = fail(error, -ENOTCONN, "no Secret Service on the D-Bus session bus "
			 "(org.freedesktop.secrets is not provided; is gnome-keyring installed?)");
	else if (g_error_matches(e, SECRET_ERROR, SECRET_ERROR_IS_LOCKED))
		r = fail(error, -EACCES, "the Secret Service keyring is locked "
			 "(unlock it, e.g. by logging in to the session)");
	else {
		g_dbus_error_strip_remote_error(e);
		r = fail(error, -EIO, "the Secret Service failed: %s", e->message);
	}
	g_clear_error(&e);
	return r;
}

/* The session bus first, so "no bus" and "no service" read differently. */
static int session_connect(struct secret_session *ss, char **error)
{
	GAsyncResult *res;
	GDBusConnection *bus;
	GError *e = NULL;

	g_bus_get(G_BUS_TYPE_SESSION, ss->cancel, on_result, ss);
	res = session_wait(ss);
	if (!res)
		return classify(ss, NULL, error);
	bus = g_bus_get_finish(res, &e);
	g_object_unref(res);
	if (!bus && !ss->timed_out) {
		int r = fail(error, -ENOTCONN, "no D-Bus session bus (%s)", e->message);

		g_error_free(e);
		return r;
	}
	if (!bus)
		return classify(ss, e, error);
	g_object_unref(bus);

	secret_service_open(SECRET_TYPE_SERVICE, NULL, SECRET_SERVICE_NONE, ss->cancel,
			    on_result, ss);
	res = session_wait(ss);
	if (!res)
		return classify(ss, NULL, error);
	ss->service = secret_service_open_finish(res, &e);
	g_object_unref(res);
	return ss->service ? 0 : classify(ss, e, error);
}

/* The stored items of this identity: unlocked ones first. */
static int session_search(struct secret_session *ss, GList **items, char **error)
{
	GAsyncResult *res;
	GError *e = NULL;

	secret_service_search(ss->service, &sip_schema, ss->attributes, SECRET_SEARCH_ALL,
			      ss->cancel, on_result, ss);
	res = session_wait(ss);
	if (!res)
		return classify(ss, NULL, error);
	*items = secret_service_search_finish(ss->service, res, &e);
	g_object_unref(res);
	return e ? classify(ss, e, error) : 0;
}

static int item_read(struct secret_session *ss, SecretItem *item, char **password,
		     char **error)
{
	GAsyncResult *res;
	GError *e = NULL;
	SecretValue *value;
	const char *text;

	secret_item_load_secret(item, ss->cancel, on_result, ss);
	res = session_wait(ss);
	if (!res)
		return classify(ss, NULL, error);
	secret_item_load_secret_finish(item, res, &e);
	g_object_unref(res);
	if (e)
		return classify(ss, e, error);
	value = secret_item_get_secret(item);
	text = value ? secret_value_get_text(value) : NULL;
	if (!text || !*text) {
		if (value)
			secret_value_unref(value);
		return fail(error, -EIO, "the stored SIP password is empty or not text");
	}
	*password = g_strdup(text);
	secret_value_unref(value);
	return 0;
}

static SecretItem *first_unlocked(GList *items)
{
	for (GList *l = items; l; l = l->next)
		if (!secret_item_get_locked(l->data))
			return l->data;
	return NULL;
}

int secret_lookup(const char *mc_service_id, const char *username,
		  char **password, char **error)
{
	struct secret_session *ss = session_new(mc_service_id, username);
	GList *items = NULL;
	SecretItem *item;
	int r;

	*password = NULL;
	*error = NULL;
	r = session_connect(ss, error);
	if (r == 0)
		r = session_search(ss, &items, error);
	if (r == 0 && !items)
		r = fail(error, -ENOENT, "no SIP password stored in the Secret Service for %s "
			 "(user %s); store one with \"lmrsecctl credentials set\"",
			 mc_service_id, username);
	if (r == 0) {
		item = first_unlocked(items);
		if (item)
			r = item_read(ss, item, password, error);
		else
			r = fail(error, -EACCES, "the Secret Service keyring holding the SIP "
				 "password is locked (unlock it, e.g. by logging in to the session)");
	}
	g_list_free_full(items, g_object_unref);
	session_free(ss);
	return r;
}

int secret_store(const char *mc_service_id, const char *username,
		 const char *password, char **error)
{
	struct secret_session *ss = session_new(mc_service_id, username);
	g_autofree char *label = g_strdup_printf("lmrsec SIP password for %s (%s)",
						 username, mc_service_id);
	SecretValue *value = secret_value_new(password, -1, "text/plain");
	GAsyncResult *res;
	GError *e = NULL;
	int r;

	*error = NULL;
	r = session_connect(ss, error);
	if (r == 0) {
		secret_service_store(ss->service, &sip_schema, ss->attributes,
				     SECRET_COLLECTION_DEFAULT, label, value, ss->cancel,
				     on_result, ss);
		res = session_wait(ss);
		if (!res) {
			r = classify(ss, NULL, error);
		} else {
			secret_service_store_finish(ss->service, res, &e);
			g_object_unref(res);
			r = e ? classify(ss, e, error) : 0;
		}
	}
	secret_value_unref(value);
	session_free(ss);
	return r;
}

int secret_clear(const char *mc_service_id, const char *username, char **error)
{
	struct secret_session *ss = session_new(mc_service_id, username);
	GAsyncResult *res;
	GError *e = NULL;
	gboolean removed = FALSE;
	int r;

	*error = NULL;
	r = session_connect(ss, error);
	if (r == 0) {
		secret_service_clear(ss->service, &sip_schema, ss->attributes, ss->cancel,
				     on_result, ss);
		res = session_wait(ss);
		if (!res) {
			r = classify(ss, NULL, error);
		} else {
			removed = secret_service_clear_finish(ss->service, res, &e);
			g_object_unref(res);
			r = e ? classify(ss, e, error) : 0;
		}
	}
	if (r == 0 && !removed)
		r = fail(error, -ENOENT, "no SIP password stored in the Secret Service for %s "
			 "(user %s)", mc_service_id, username);
	session_free(ss);
	return r;
}

void secret_password_free(char *password)
{
	if (!password)
		return;
	explicit_bzero(password, strlen(password));
	g_free(password);
}
