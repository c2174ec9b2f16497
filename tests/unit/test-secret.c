/*
 * test-secret.c — the Secret Service access without a session bus: every
 * operation fails at once with -ENOTCONN and a line saying there is no bus,
 * and nothing is left behind.  (Against a real gnome-keyring:
 * tests/integration/e2e-secret-service.sh.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "secret.h"

#define ID "sip:alice@mc.test"

/* A session bus address where nothing listens. */
static int no_bus(void **state)
{
	(void)state;
	setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/lmrsec-test-bus", 1);
	return 0;
}

static void assert_no_bus(int r, char *error, gint64 t0)
{
	assert_int_equal(r, -ENOTCONN);
	assert_non_null(error);
	assert_non_null(strstr(error, "no D-Bus session bus"));
	assert_null(strchr(error, '\n'));
	assert_true(g_get_monotonic_time() - t0 < 2 * G_USEC_PER_SEC);
	free(error);
}

static void test_lookup_without_bus(void **state)
{
	gint64 t0 = g_get_monotonic_time();
	char *password = (char *)"unchanged", *error = NULL;
	int r;

	(void)state;
	r = secret_lookup(ID, "alice", &password, &error);
	assert_null(password);
	assert_no_bus(r, error, t0);
}

static void test_store_without_bus(void **state)
{
	gint64 t0 = g_get_monotonic_time();
	char *error = NULL;
	int r;

	(void)state;
	r = secret_store(ID, "alice", "pw", &error);
	assert_no_bus(r, error, t0);
}

static void test_clear_without_bus(void **state)
{
	gint64 t0 = g_get_monotonic_time();
	char *error = NULL;
	int r;

	(void)state;
	r = secret_clear(ID, "alice", &error);
	assert_no_bus(r, error, t0);
}

/* The private main context is popped: the caller's default is untouched. */
static void test_context_restored(void **state)
{
	GMainContext *before = g_main_context_ref_thread_default();
	char *password = NULL, *error = NULL;

	(void)state;
	secret_lookup(ID, "alice", &password, &error);
	free(error);
	assert_ptr_equal(g_main_context_ref_thread_default(), before);
	g_main_context_unref(before);
	g_main_context_unref(before);
}

static void test_password_free(void **state)
{
	(void)state;
	secret_password_free(NULL);
	secret_password_free(g_strdup("secret"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_lookup_without_bus, no_bus),
		cmocka_unit_test_setup(test_store_without_bus, no_bus),
		cmocka_unit_test_setup(test_clear_without_bus, no_bus),
		cmocka_unit_test_setup(test_context_restored, no_bus),
		cmocka_unit_test(test_password_free),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
