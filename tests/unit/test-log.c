/*
 * test-log.c — the structured log lines: which fields each carries, their
 * exact values, the level of each broker event, and that a line is
 * readable on its own (MESSAGE names id, LMR type, size and fingerprint).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <glib.h>

#include "log.h"

/* The last record the writer saw. */
static struct {
	int count;
	GLogLevelFlags level;
	GHashTable *fields;	/* key → value, both owned */
} seen;

static GLogWriterOutput capture(GLogLevelFlags level, const GLogField *fields,
				gsize n, gpointer data)
{
	(void)data;
	seen.count++;
	seen.level = level;
	g_hash_table_remove_all(seen.fields);
	for (gsize i = 0; i < n; i++) {
		gssize len = fields[i].length;
		char *v = len < 0 ? g_strdup(fields[i].value) : g_strndup(fields[i].value, (gsize)len);

		g_hash_table_insert(seen.fields, g_strdup(fields[i].key), v);
	}
	return G_LOG_WRITER_HANDLED;
}

static const char *field(const char *key)
{
	return g_hash_table_lookup(seen.fields, key);
}

static int reset(void **state)
{
	(void)state;
	seen.count = 0;
	g_hash_table_remove_all(seen.fields);
	return 0;
}

static const uint8_t fp[32] = {
	0xab, 0x12, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
	14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 0xff,
};
#define FP_HEX "ab12000102030405060708090a0b0c0d" "0e0f101112131415161718191a1b1cff"

static void test_every_field(void **state)
{
	struct log_fields f = {
		.event = "rejected", .id = 42, .lmr_type = "TETRA", .fingerprint = fp,
		.size = 4096, .sip_status = 403, .sender = "sip:iwf@iwf.test",
	};

	(void)state;
	log_message(G_LOG_LEVEL_WARNING, &f, "text %d", 1);
	assert_int_equal(seen.count, 1);
	assert_int_equal(seen.level, G_LOG_LEVEL_WARNING);
	assert_string_equal(field("MESSAGE"), "text 1");
	assert_string_equal(field("PRIORITY"), "4");
	assert_string_equal(field("GLIB_DOMAIN"), "lmrsec");
	assert_string_equal(field("LMRSEC_EVENT"), "rejected");
	assert_string_equal(field("LMRSEC_MESSAGE_ID"), "42");
	assert_string_equal(field("LMRSEC_LMR_TYPE"), "TETRA");
	assert_string_equal(field("LMRSEC_FINGERPRINT"), FP_HEX);
	assert_string_equal(field("LMRSEC_SIZE"), "4096");
	assert_string_equal(field("LMRSEC_SIP_STATUS"), "403");
	assert_string_equal(field("LMRSEC_SENDER"), "sip:iwf@iwf.test");
}

static void test_unset_fields_left_out(void **state)
{
	struct log_fields f = { .sip_status = 503 };

	(void)state;
	log_message(G_LOG_LEVEL_MESSAGE, &f, "spool full");
	assert_int_equal(g_hash_table_size(seen.fields), 4);
	assert_string_equal(field("PRIORITY"), "5");
	assert_string_equal(field("LMRSEC_SIP_STATUS"), "503");
	assert_null(field("LMRSEC_MESSAGE_ID"));
	assert_null(field("LMRSEC_FINGERPRINT"));
}

static void test_received_event(void **state)
{
	struct broker_event ev = {
		.kind = BROKER_EVENT_RECEIVED, .id = 3, .lmr_type = "P25",
		.size = 256, .fingerprint = fp,
	};

	(void)state;
	log_broker_event(NULL, &ev);
	assert_int_equal(seen.count, 1);
	assert_int_equal(seen.level, G_LOG_LEVEL_MESSAGE);
	assert_string_equal(field("MESSAGE"), "message 3 received: LMR type P25, 256 bytes, "
			    "sha256 " FP_HEX "; spooled");
	assert_string_equal(field("LMRSEC_EVENT"), "received");
	assert_string_equal(field("LMRSEC_MESSAGE_ID"), "3");
	assert_null(field("LMRSEC_SIP_STATUS"));	/* the answer may wait (ack-mode delivered) */
	assert_string_equal(field("LMRSEC_FINGERPRINT"), FP_HEX);
}

static void test_event_levels(void **state)
{
	static const struct {
		enum broker_event_kind kind;
		int logged;
		GLogLevelFlags level;
		const char *event;
	} rows[] = {
		{ BROKER_EVENT_DELIVERED, 1, G_LOG_LEVEL_DEBUG, "delivered" },
		{ BROKER_EVENT_ACKED, 1, G_LOG_LEVEL_MESSAGE, "acked" },
		{ BROKER_EVENT_NACKED, 1, G_LOG_LEVEL_MESSAGE, "nacked" },
		{ BROKER_EVENT_EXPIRED, 1, G_LOG_LEVEL_WARNING, "expired" },
		{ BROKER_EVENT_REJECTED, 1, G_LOG_LEVEL_DEBUG, "rejected" },
		{ BROKER_EVENT_REGISTRATION, 0, 0, NULL },
	};

	(void)state;
	log_set_level(LOG_LEVEL_DEBUG);  /* else debug lines are not even made */
	for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
		struct broker_event ev = {
			.kind = rows[i].kind, .id = 9, .lmr_type = "TETRA", .size = 1,
			.fingerprint = fp, .sip_status = 503, .reason = "Service Unavailable",
		};

		seen.count = 0;
		log_broker_event(NULL, &ev);
		assert_int_equal(seen.count, rows[i].logged);
		if (!rows[i].logged)
			continue;
		assert_int_equal(seen.level, rows[i].level);
		assert_string_equal(field("LMRSEC_EVENT"), rows[i].event);
		assert_string_equal(field("LMRSEC_MESSAGE_ID"), "9");
		assert_non_null(strstr(field("MESSAGE"), rows[i].kind == BROKER_EVENT_REJECTED ?
				       "503" : "message 9"));
	}
	log_set_level(LOG_LEVEL_MESSAGE);
}

/* Lines below the active level are dropped before they are formatted:
 * the writer never sees them. */
static void test_below_level_not_made(void **state)
{
	struct broker_event delivered = {
		.kind = BROKER_EVENT_DELIVERED, .id = 4, .lmr_type = "TETRA", .size = 1,
		.fingerprint = fp,
	};
	struct broker_event acked = delivered;

	(void)state;
	acked.kind = BROKER_EVENT_ACKED;
	g_unsetenv("G_MESSAGES_DEBUG");
	log_set_level(LOG_LEVEL_MESSAGE);
	log_broker_event(NULL, &delivered);
	assert_int_equal(seen.count, 0);
	log_broker_event(NULL, &acked);
	assert_int_equal(seen.count, 1);
	log_set_level(LOG_LEVEL_WARNING);
	log_broker_event(NULL, &acked);
	assert_int_equal(seen.count, 1);
	log_set_level(LOG_LEVEL_MESSAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_every_field, reset),
		cmocka_unit_test_setup(test_unset_fields_left_out, reset),
		cmocka_unit_test_setup(test_received_event, reset),
		cmocka_unit_test_setup(test_event_levels, reset),
		cmocka_unit_test_setup(test_below_level_not_made, reset),
	};
	int r;

	seen.fields = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_log_set_writer_func(capture, NULL, NULL);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	g_hash_table_destroy(seen.fields);
	return r;
}
