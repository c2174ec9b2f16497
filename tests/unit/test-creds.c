/*
 * test-creds.c — the SIP password from its source: a password file (owner,
 * mode, size, line end), a systemd credential, and the Secret Service's
 * errors, which name the other sources.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "creds.h"

struct fixture {
	char *dir;
	char *file;
};

static int setup(void **state)
{
	struct fixture *f = g_new0(struct fixture, 1);

	f->dir = g_dir_make_tmp("test-creds.XXXXXX", NULL);
	assert_non_null(f->dir);
	f->file = g_build_filename(f->dir, CREDS_CREDENTIAL_NAME, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	g_unlink(f->file);
	g_rmdir(f->dir);
	g_free(f->file);
	g_free(f->dir);
	g_free(f);
	unsetenv("CREDENTIALS_DIRECTORY");
	return 0;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	assert_int_equal(chmod(path, mode), 0);
}

static struct lmrsec_config *config_with(const char *source)
{
	g_autofree char *text = g_strdup_printf(
		"[identity]\nmc-service-id = sip:alice@mc.test\n"
		"[server]\nregistrar = sip:mc.test\n"
		"[auth]\nusername = alice\npassword-source = %s\n"
		"[lmr]\nkmf-uri = sip:kmf@iwf.test\n", source);
	struct lmrsec_config *cfg = NULL;
	char *error = NULL;

	assert_int_equal(config_parse_data(text, strlen(text), "test.conf", &cfg, &error), 0);
	return cfg;
}

static void test_file_read(void **state)
{
	struct fixture *f = *state;
	char *password = NULL, *error = NULL;

	write_file(f->file, "s3cret\r\n", 0600);
	assert_int_equal(creds_read_file(f->file, &password, &error), 0);
	assert_string_equal(password, "s3cret");
	creds_free(password);
}

static void test_file_mode_refused(void **state)
{
	struct fixture *f = *state;
	char *password = NULL, *error = NULL;

	write_file(f->file, "s3cret\n", 0640);
	assert_int_equal(creds_read_file(f->file, &password, &error), -EPERM);
	assert_null(password);
	assert_non_null(strstr(error, "must be mode 0600"));
	g_free(error);
}

static void test_file_empty_and_long(void **state)
{
	struct fixture *f = *state;
	char *password = NULL, *error = NULL;
	char *big = g_strnfill(CREDS_MAX_PASSWORD + 10, 'x');

	write_file(f->file, "\n", 0600);
	assert_int_equal(creds_read_file(f->file, &password, &error), -EINVAL);
	g_free(error);
	write_file(f->file, big, 0600);
	assert_int_equal(creds_read_file(f->file, &password, &error), -EFBIG);
	assert_non_null(strstr(error, "longer than"));
	g_free(error);
	g_free(big);
}

static void test_credential(void **state)
{
	struct fixture *f = *state;
	struct lmrsec_config *cfg = config_with("credential");
	char *password = NULL, *error = NULL;

	unsetenv("CREDENTIALS_DIRECTORY");
	assert_int_equal(creds_password(cfg, &password, &error), -ENOENT);
	assert_non_null(strstr(error, "$CREDENTIALS_DIRECTORY is not set"));
	g_free(error);
	write_file(f->file, "from-systemd\n", 0600);
	setenv("CREDENTIALS_DIRECTORY", f->dir, 1);
	assert_int_equal(creds_password(cfg, &password, &error), 0);
	assert_string_equal(password, "from-systemd");
	creds_free(password);
	config_free(cfg);
}

/* No session bus: the error says so, in one line, with the alternatives. */
static void test_secret_service_names_fallbacks(void **state)
{
	struct lmrsec_config *cfg = config_with("secret-service");
	char *password = NULL, *error = NULL;

	(void)state;
	setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/lmrsec-test-bus", 1);
	assert_int_equal(creds_password(cfg, &password, &error), -ENOTCONN);
	assert_null(password);
	assert_non_null(strstr(error, "password-source = secret-service: no D-Bus session bus"));
	assert_non_null(strstr(error, "password-source = credential"));
	assert_non_null(strstr(error, "file:PATH"));
	assert_null(strchr(error, '\n'));
	g_free(error);
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_file_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_mode_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_empty_and_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credential, setup, teardown),
		cmocka_unit_test(test_secret_service_names_fallbacks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
