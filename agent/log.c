/*
 * log — structured message-lifecycle log lines (see log.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define LOG_MAX_FIELDS 10

/* syslog priorities, as GLib itself maps its levels. */
static const char *priority_of(GLogLevelFlags level)
{
	if (level & G_LOG_LEVEL_ERROR)
		return "3";
	if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
		return "4";
	if (level & G_LOG_LEVEL_MESSAGE)
		return "5";
	if (level & G_LOG_LEVEL_INFO)
		return "6";
	return "7";
}

static void hex_of(const uint8_t fp[SPOOL_FINGERPRINT_LEN], char out[2 * SPOOL_FINGERPRINT_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < SPOOL_FINGERPRINT_LEN; i++) {
		out[2 * i] = digits[fp[i] >> 4];
		out[2 * i + 1] = digits[fp[i] & 0xf];
	}
	out[2 * SPOOL_FINGERPRINT_LEN] = '\0';
}

static bool log_enabled(GLogLevelFlags flags);

void log_message(GLogLevelFlags level, const struct log_fields *f, const char *fmt, ...)
{
	GLogField fields[LOG_MAX_FIELDS];
	char id[24], size[24], status[16], hex[2 * SPOOL_FINGERPRINT_LEN + 1];
	g_autofree char *text = NULL;
	size_t n = 0;
	va_list ap;

	if (!log_enabled(level))
		return;		/* below the level: not even formatted */

	va_start(ap, fmt);
	text = g_strdup_vprintf(fmt, ap);
	va_end(ap);

	fields[n++] = (GLogField){ "MESSAGE", text, -1 };
	fields[n++] = (GLogField){ "PRIORITY", priority_of(level), -1 };
	fields[n++] = (GLogField){ "GLIB_DOMAIN", LOG_DOMAIN, -1 };
	if (f->event)
		fields[n++] = (GLogField){ "LMRSEC_EVENT", f->event, -1 };
	if (f->id) {
		snprintf(id, sizeof(id), "%" PRId64, f->id);
		fields[n++] = (GLogField){ "LMRSEC_MESSAGE_ID", id, -1 };
	}
	if (f->lmr_type)
		fields[n++] = (GLogField){ "LMRSEC_LMR_TYPE", f->lmr_type, -1 };
	if (f->fingerprint) {
		hex_of(f->fingerprint, hex);
		snprintf(size, sizeof(size), "%zu", f->size);
		fields[n++] = (GLogField){ "LMRSEC_FINGERPRINT", hex, -1 };
		fields[n++] = (GLogField){ "LMRSEC_SIZE", size, -1 };
	}
	if (f->sip_status) {
		snprintf(status, sizeof(status), "%u", f->sip_status);
		fields[n++] = (GLogField){ "LMRSEC_SIP_STATUS", status, -1 };
	}
	if (f->sender)
		fields[n++] = (GLogField){ "LMRSEC_SENDER", f->sender, -1 };

	g_log_structured_array(level, fields, n);
}

void log_broker_event(void *ctx, const struct broker_event *ev)
{
	struct log_fields f = {
		.event = broker_event_name(ev->kind),
		.id = ev->id,
		.lmr_type = ev->lmr_type,
		.fingerprint = ev->fingerprint,
		.size = ev->size,
		.sip_status = ev->sip_status,
	};
	char hex[2 * SPOOL_FINGERPRINT_LEN + 1] = "?";
	const char *type = ev->lmr_type ? ev->lmr_type : "?";

	(void)ctx;
	if (ev->kind == BROKER_EVENT_REGISTRATION)
		return;
	if (ev->fingerprint && log_enabled(G_LOG_LEVEL_MESSAGE))
		hex_of(ev->fingerprint, hex);	/* only RECEIVED and EXPIRED show it */

	switch (ev->kind) {
	case BROKER_EVENT_REGISTRATION:
		return;
	case BROKER_EVENT_RECEIVED:
		log_message(G_LOG_LEVEL_MESSAGE, &f, "message %" PRId64 " received: LMR type %s, "
			    "%zu bytes, sha256 %s; spooled", ev->id, type, ev->size, hex);
		return;
	case BROKER_EVENT_DELIVERED:
		log_message(G_LOG_LEVEL_DEBUG, &f, "message %" PRId64 " (LMR type %s) handed "
			    "to its consumer", ev->id, type);
		return;
	case BROKER_EVENT_ACKED:
		log_message(G_LOG_LEVEL_MESSAGE, &f, "message %" PRId64 " (LMR type %s) "
			    "acknowledged by its consumer; removed from the spool", ev->id, type);
		return;
	case BROKER_EVENT_NACKED:
		log_message(G_LOG_LEVEL_MESSAGE, &f, "message %" PRId64 " (LMR type %s) "
			    "refused by its consumer (NACK); queued again", ev->id, type);
		return;
	case BROKER_EVENT_EXPIRED:
		log_message(G_LOG_LEVEL_WARNING, &f, "message %" PRId64 " (LMR type %s, %zu bytes, "
			    "sha256 %s) expired undelivered after the message TTL; dropped",
			    ev->id, type, ev->size, hex);
		return;
	case BROKER_EVENT_REJECTED:
		log_message(G_LOG_LEVEL_DEBUG, &f, "MESSAGE answered %u %s", ev->sip_status,
			    ev->reason ? ev->reason : "");
		return;
	}
}

/* ---------- the level ---------- */

static gint current_level = LOG_LEVEL_MESSAGE;	/* read from any thread */

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_MESSAGE] = "message",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

static enum log_level level_of(GLogLevelFlags flags)
{
	if (flags & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
		return LOG_LEVEL_ERROR;
	if (flags & G_LOG_LEVEL_WARNING)
		return LOG_LEVEL_WARNING;
	if (flags & G_LOG_LEVEL_MESSAGE)
		return LOG_LEVEL_MESSAGE;
	if (flags & G_LOG_LEVEL_INFO)
		return LOG_LEVEL_INFO;
	return LOG_LEVEL_DEBUG;
}

/* Where stderr goes, decided once in log_init: GLib's default writer asks
 * the kernel (ioctl, fstat) for every line, two system calls per line and
 * a few per message at the default level. */
static bool stderr_is_journal;
static bool stderr_has_color;
static bool stdout_has_color;

/* Lines above the level are dropped, except that at `message` GLib's
 * G_MESSAGES_DEBUG still decides for info and debug lines. */
static bool level_drops(GLogLevelFlags flags)
{
	enum log_level level = (enum log_level) g_atomic_int_get(&current_level);

	return level_of(flags) > level && level != LOG_LEVEL_MESSAGE;
}

/* Whether a line at flags in our domain would be written. */
static bool log_enabled(GLogLevelFlags flags)
{
	return !level_drops(flags) && !g_log_writer_default_would_drop(flags, LOG_DOMAIN);
}

static const char *domain_of(const GLogField *fields, gsize n_fields)
{
	for (gsize i = 0; i < n_fields; i++)
		if (strcmp(fields[i].key, "GLIB_DOMAIN") == 0)
			return fields[i].value;
	return NULL;
}

/* g_log_writer_default without its per-line checks: the same drop rule
 * (G_MESSAGES_DEBUG), journal or standard streams, the same format. */
static GLogWriterOutput write_line(GLogLevelFlags flags, const GLogField *fields,
				   gsize n_fields, gpointer data)
{
	bool to_stderr = flags & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL |
				  G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE);
	FILE *stream = to_stderr ? stderr : stdout;
	g_autofree char *line = NULL;

	if (g_log_writer_default_would_drop(flags, domain_of(fields, n_fields)))
		return G_LOG_WRITER_HANDLED;
	if (stderr_is_journal &&
	    g_log_writer_journald(flags, fields, n_fields, data) == G_LOG_WRITER_HANDLED)
		return G_LOG_WRITER_HANDLED;
	line = g_log_writer_format_fields(flags, fields, n_fields,
					  to_stderr ? stderr_has_color : stdout_has_color);
	fputs(line, stream);
	fputc('\n', stream);
	fflush(stream);
	return G_LOG_WRITER_HANDLED;
}

static GLogWriterOutput log_writer(GLogLevelFlags flags, const GLogField *fields,
				   gsize n_fields, gpointer data)
{
	if (level_drops(flags))
		return G_LOG_WRITER_HANDLED;
	/* fatal lines keep GLib's own handling (G_DEBUG=fatal-*, abort) */
	if (flags & (G_LOG_FLAG_FATAL | G_LOG_LEVEL_ERROR))
		return g_log_writer_default(flags, fields, n_fields, data);
	return write_line(flags, fields, n_fields, data);
}

void log_set_level(enum log_level level)
{
	g_atomic_int_set(&current_level, (gint) level);
	/* GLib's writer drops info and debug unless told otherwise */
	g_log_set_debug_enabled(level >= LOG_LEVEL_INFO);
}

void log_init(bool verbose)
{
	stderr_is_journal = g_log_writer_is_journald(fileno(stderr));
	stderr_has_color = g_log_writer_supports_color(fileno(stderr));
	stdout_has_color = g_log_writer_supports_color(fileno(stdout));
	g_log_set_writer_func(log_writer, NULL, NULL);
	log_set_level(verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_MESSAGE);
}

enum log_level log_get_level(void)
{
	return (enum log_level) g_atomic_int_get(&current_level);
}

const char *log_level_name(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_ERROR:
	case LOG_LEVEL_WARNING:
	case LOG_LEVEL_MESSAGE:
	case LOG_LEVEL_INFO:
	case LOG_LEVEL_DEBUG:
		return level_names[level];
	}
	return "?";
}

int log_level_from_name(const char *name, enum log_level *out)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(level_names); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level) i;
			return 0;
		}
	}
	return -EINVAL;
}
