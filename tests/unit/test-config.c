/*
 * Unit tests for agent/config.c: the configuration file (DESIGN §5).
 *
 * Built and run by hand with:
 *   gcc -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 \
 *       -Wmissing-prototypes -Wstrict-prototypes -g \
 *       -fsanitize=address,undefined -fno-omit-frame-pointer \
 *       -fno-sanitize-recover=undefined -Iagent \
 *       tests/unit/test-config.c agent/config.c \
 *       $(pkg-config --cflags --libs glib-2.0 cmocka) -o tests/unit/test-config
 *   ASAN_OPTIONS=detect_leaks=1 G_SLICE=always-malloc tests/unit/test-config
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
#include <unistd.h>

#include <glib.h>

#include "../../agent/config.h"	/* not the autoconf config.h of the build dir */

#define FILE_NAME	"/etc/lmrsec/agent.conf"

/* The smallest valid file: every mandatory key, in file order. */
static const struct entry {
	const char *group;
	const char *key;
	const char *value;
} minimal[] = {
	{ "identity", "mc-service-id", "sip:alice@mc.example.org" },
	{ "server", "registrar", "sip:mc.example.org;transport=tcp" },
	{ "auth", "username", "alice" },
	{ "auth", "password-source", "secret-service" },
	{ "lmr", "kmf-uri", "sip:kmf@iwf.example.org" },
};

static const char *const minimal_groups[] = { "identity", "server", "auth", "lmr" };

static bool is(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* One [group] of the minimal file, with key replaced, added or left out. */
static void append_group(GString *s, const char *name, const char *group,
			 const char *key, const char *value)
{
	bool placed = false;

	g_string_append_printf(s, "[%s]\n", name);
	for (size_t i = 0; i < G_N_ELEMENTS(minimal); i++) {
		const struct entry *e = &minimal[i];

		if (!is(e->group, name))
			continue;
		if (is(name, group) && is(e->key, key)) {
			placed = true;
			if (value)
				g_string_append_printf(s, "%s = %s\n", key, value);
			continue;
		}
		g_string_append_printf(s, "%s = %s\n", e->key, e->value);
	}

	if (is(name, group) && !placed && value)
		g_string_append_printf(s, "%s = %s\n", key, value);
}

/*
 * The minimal file with group.key set to value (added when new), or left out
 * when value is NULL; group NULL: the minimal file as it is.
 */
static char *minimal_with(const char *group, const char *key,
			  const char *value)
{
	GString *s = g_string_new(NULL);
	bool known = false;

	for (size_t i = 0; i < G_N_ELEMENTS(minimal_groups); i++) {
		append_group(s, minimal_groups[i], group, key, value);
		known |= is(minimal_groups[i], group);
	}

	if (group && !known && value)
		g_string_append_printf(s, "[%s]\n%s = %s\n", group, key, value);

	return g_string_free(s, FALSE);
}

static int parse_text(const char *text, struct lmrsec_config **cfg,
		      char **error_line)
{
	return config_parse_data(text, strlen(text), FILE_NAME, cfg,
				 error_line);
}

static struct lmrsec_config *parse_ok(const char *text)
{
	struct lmrsec_config *cfg = NULL;
	char *error_line = NULL;
	int r = parse_text(text, &cfg, &error_line);

	if (r < 0)
		print_error("unexpected error: %s\n", error_line);
	assert_int_equal(r, 0);
	assert_non_null(cfg);
	assert_null(error_line);
	return cfg;
}

/* group.key = value makes the file fail with exactly "FILE: [group] key: problem". */
static void assert_rejected(const char *group, const char *key,
			    const char *value, const char *problem)
{
	g_autofree char *text = minimal_with(group, key, value);
	g_autofree char *expected = g_strdup_printf("%s: [%s] %s: %s",
						    FILE_NAME, group, key,
						    problem);
	static struct lmrsec_config sentinel;
	struct lmrsec_config *cfg = &sentinel;	/* must come back NULL */
	char *error_line = NULL;

	assert_int_equal(parse_text(text, &cfg, &error_line), -EINVAL);
	assert_null(cfg);
	assert_non_null(error_line);
	assert_string_equal(error_line, expected);
	free(error_line);
}

static void assert_warned(const struct lmrsec_config *cfg, const char *line)
{
	for (size_t i = 0; cfg->warnings[i]; i++)
		if (strcmp(cfg->warnings[i], line) == 0)
			return;

	for (size_t i = 0; cfg->warnings[i]; i++)
		print_error("warning: %s\n", cfg->warnings[i]);
	fail_msg("no warning \"%s\"", line);
}

static size_t list_length(char **list)
{
	return g_strv_length(list);
}

/* A temporary file holding text; the caller unlinks and frees the name. */
static char *write_temp(const char *text)
{
	GError *err = NULL;
	char *path = NULL;
	int fd = g_file_open_tmp("test-config-XXXXXX.conf", &path, &err);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
	close(fd);
	return path;
}

/* --- defaults and full file --------------------------------------------- */

static void test_minimal_file_gets_all_defaults(void **state)
{
	g_autofree char *text = minimal_with(NULL, NULL, NULL);
	struct lmrsec_config *cfg = parse_ok(text);

	(void) state;
	assert_string_equal(cfg->identity.mc_service_id, "sip:alice@mc.example.org");
	assert_string_equal(cfg->identity.public_identity, "sip:alice@mc.example.org");
	assert_null(cfg->identity.instance_id);

	assert_string_equal(cfg->server.registrar, "sip:mc.example.org;transport=tcp");
	assert_string_equal(cfg->server.outbound_proxy, "sip:mc.example.org;transport=tcp");
	assert_null(cfg->server.participating_psi);
	assert_int_equal(cfg->server.transport, CONFIG_TRANSPORT_TCP);
	assert_int_equal(cfg->server.expires, 600);
	assert_null(cfg->server.local_address);
	assert_int_equal(cfg->server.local_port, 0);
	assert_int_equal(cfg->server.transaction_timeout, 32);

	assert_string_equal(cfg->auth.username, "alice");
	assert_int_equal(cfg->auth.password_source, CONFIG_PASSWORD_SECRET_SERVICE);
	assert_null(cfg->auth.password_file);
	assert_null(cfg->auth.realm);

	assert_int_equal(list_length(cfg->lmr.kmf_uris), 1);
	assert_string_equal(cfg->lmr.kmf_uris[0], "sip:kmf@iwf.example.org");
	assert_int_equal(cfg->lmr.sender_identity,
			 CONFIG_SENDER_IDENTITY_P_ASSERTED_IDENTITY);

	assert_null(cfg->tls.certificate_dir);
	assert_true(cfg->tls.verify);

	assert_int_equal(cfg->delivery.ack_mode, CONFIG_ACK_MODE_STORED);
	assert_int_equal(cfg->delivery.delivery_timeout, 5);
	assert_int_equal(cfg->delivery.max_payload, 65535);
	assert_int_equal(cfg->delivery.max_body, 131072);
	assert_int_equal(cfg->delivery.spool_max_messages, 1000);
	assert_int_equal(cfg->delivery.spool_max_bytes, 16777216);
	assert_int_equal(cfg->delivery.message_ttl, 86400);

	assert_null(cfg->socket.path);
	assert_null(cfg->socket.group);
	assert_non_null(cfg->socket.allowed_users);
	assert_null(cfg->socket.allowed_users[0]);
	assert_non_null(cfg->socket.allowed_groups);
	assert_null(cfg->socket.allowed_groups[0]);

	assert_null(cfg->paths.state_dir);
	assert_int_equal(cfg->registration.retry_min, 1);
	assert_int_equal(cfg->registration.retry_max, 300);

	assert_non_null(cfg->warnings);
	assert_null(cfg->warnings[0]);
	config_free(cfg);
}

static const char full_file[] =
	"# every key, none at its default\n"
	"[identity]\n"
	"mc-service-id = sip:alice@mc.example.org\n"
	"public-identity = sip:alice.public@mc.example.org\n"
	"instance-id = urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6\n"
	"[server]\n"
	"registrar = sips:mc.example.org:5061\n"
	"outbound-proxy = sips:proxy.example.org;lr\n"
	"participating-psi = sip:psi@mc.example.org\n"
	"transport = tls\n"
	"expires = 3600\n"
	"local-address = 127.0.0.1\n"
	"local-port = 5070\n"
	"transaction-timeout = 8\n"
	"[auth]\n"
	"username = alice-auth\n"
	"password-source = file:/etc/lmrsec/sip-password\n"
	"realm = mc.example.org\n"
	"[lmr]\n"
	"kmf-uri = sip:kmf1@iwf.example.org; sip:kmf2@iwf.example.org\n"
	"trusted-senders = sip:iwf@iwf.example.org\n"
	"sender-identity = from\n"
	"[tls]\n"
	"certificate-dir = /etc/lmrsec/tls\n"
	"verify = false\n"
	"[delivery]\n"
	"ack-mode = delivered\n"
	"delivery-timeout = 30\n"
	"max-payload = 4096\n"
	"max-body = 8192\n"
	"spool-max-messages = 50\n"
	"spool-max-bytes = 1048576\n"
	"message-ttl = 3600\n"
	"[socket]\n"
	"path = /run/lmrsec-test/agent.sock\n"
	"group = lmrsec\n"
	"allowed-users = crypto; radio\n"
	"allowed-groups = lmrcrypto\n"
	"[paths]\n"
	"state-dir = /var/lib/lmrsec-test\n"
	"[registration]\n"
	"retry-min = 2\n"
	"retry-max = 60\n";

static void test_full_file_sets_every_key(void **state)
{
	struct lmrsec_config *cfg = parse_ok(full_file);

	(void) state;
	assert_string_equal(cfg->identity.public_identity, "sip:alice.public@mc.example.org");
	assert_string_equal(cfg->identity.instance_id,
			    "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6");

	assert_string_equal(cfg->server.registrar, "sips:mc.example.org:5061");
	assert_string_equal(cfg->server.outbound_proxy, "sips:proxy.example.org;lr");
	assert_string_equal(cfg->server.participating_psi, "sip:psi@mc.example.org");
	assert_int_equal(cfg->server.transport, CONFIG_TRANSPORT_TLS);
	assert_int_equal(cfg->server.expires, 3600);
	assert_string_equal(cfg->server.local_address, "127.0.0.1");
	assert_int_equal(cfg->server.local_port, 5070);
	assert_int_equal(cfg->server.transaction_timeout, 8);

	assert_string_equal(cfg->auth.username, "alice-auth");
	assert_int_equal(cfg->auth.password_source, CONFIG_PASSWORD_FILE);
	assert_string_equal(cfg->auth.password_file, "/etc/lmrsec/sip-password");
	assert_string_equal(cfg->auth.realm, "mc.example.org");

	assert_int_equal(list_length(cfg->lmr.kmf_uris), 2);
	assert_int_equal(list_length(cfg->lmr.trusted_senders), 1);
	assert_string_equal(cfg->lmr.trusted_senders[0], "sip:iwf@iwf.example.org");
	assert_int_equal(cfg->lmr.sender_identity, CONFIG_SENDER_IDENTITY_FROM);

	assert_string_equal(cfg->tls.certificate_dir, "/etc/lmrsec/tls");
	assert_false(cfg->tls.verify);

	assert_int_equal(cfg->delivery.ack_mode, CONFIG_ACK_MODE_DELIVERED);
	assert_int_equal(cfg->delivery.delivery_timeout, 30);
	assert_int_equal(cfg->delivery.max_payload, 4096);
	assert_int_equal(cfg->delivery.max_body, 8192);
	assert_int_equal(cfg->delivery.spool_max_messages, 50);
	assert_int_equal(cfg->delivery.spool_max_bytes, 1048576);
	assert_int_equal(cfg->delivery.message_ttl, 3600);

	assert_string_equal(cfg->socket.path, "/run/lmrsec-test/agent.sock");
	assert_string_equal(cfg->socket.group, "lmrsec");
	assert_int_equal(list_length(cfg->socket.allowed_users), 2);
	assert_string_equal(cfg->socket.allowed_users[0], "crypto");
	assert_string_equal(cfg->socket.allowed_users[1], "radio");
	assert_int_equal(list_length(cfg->socket.allowed_groups), 1);
	assert_string_equal(cfg->socket.allowed_groups[0], "lmrcrypto");

	assert_string_equal(cfg->paths.state_dir, "/var/lib/lmrsec-test");
	assert_int_equal(cfg->registration.retry_min, 2);
	assert_int_equal(cfg->registration.retry_max, 60);

	/* the only warning: verify = false */
	assert_int_equal(list_length(cfg->warnings), 1);
	config_free(cfg);
}

static void test_example_file_in_docs_is_valid(void **state)
{
	const char *top = getenv("top_srcdir");	/* set by make check */
	g_autofree char *path = g_build_filename(top ? top : ".", "docs",
						 "config-example.conf", NULL);
	struct lmrsec_config *cfg = NULL;
	char *error_line = NULL;
	int r;

	(void) state;
	r = config_load(path, &cfg, &error_line);
	if (r < 0)
		print_error("%s\n", error_line);
	assert_int_equal(r, 0);
	assert_null(cfg->warnings[0]);
	config_free(cfg);
}

/* --- reading ------------------------------------------------------------ */

static void test_load_reads_a_file(void **state)
{
	g_autofree char *text = minimal_with(NULL, NULL, NULL);
	g_autofree char *path = write_temp(text);
	struct lmrsec_config *cfg = NULL;
	char *error_line = NULL;

	(void) state;
	assert_int_equal(config_load(path, &cfg, &error_line), 0);
	assert_null(error_line);
	assert_string_equal(cfg->auth.username, "alice");
	config_free(cfg);
	unlink(path);
}

static void test_load_missing_file_says_cannot_read(void **state)
{
	struct lmrsec_config *cfg = NULL;
	char *error_line = NULL;

	(void) state;
	assert_int_equal(config_load("/nonexistent-lmrsec/agent.conf", &cfg,
				     &error_line), -ENOENT);
	assert_null(cfg);
	assert_string_equal(error_line,
			    "/nonexistent-lmrsec/agent.conf: cannot read: No such file or directory");
	free(error_line);
}

static void test_load_refuses_a_file_over_the_limit(void **state)
{
	char *big = g_malloc(CONFIG_MAX_FILE_SIZE + 2);
	g_autofree char *path = NULL;
	struct lmrsec_config *cfg = NULL;
	char *error_line = NULL;

	(void) state;
	memset(big, '#', CONFIG_MAX_FILE_SIZE + 1);
	big[CONFIG_MAX_FILE_SIZE + 1] = '\0';
	path = write_temp(big);
	g_free(big);

	assert_int_equal(config_load(path, &cfg, &error_line), -EFBIG);
	assert_null(cfg);
	assert_non_null(strstr(error_line, "cannot read: file too large"));
	assert_true(g_str_has_prefix(error_line, path));
	free(error_line);
	unlink(path);
}

static void test_syntax_error_names_the_line(void **state)
{
	const char *text = "[identity]\n"
			   "mc-service-id = sip:alice@mc.example.org\n"
			   "# a comment\n"
			   "this is not a key\n"
			   "[server]\n";
	struct lmrsec_config *cfg = NULL;
	char *error_line = NULL;

	(void) state;
	assert_int_equal(parse_text(text, &cfg, &error_line), -EINVAL);
	assert_null(cfg);
	assert_true(g_str_has_prefix(error_line, FILE_NAME ": line 4: "));
	assert_non_null(strstr(error_line, "this is not a key"));
	free(error_line);
}

static void test_key_before_any_group_is_a_syntax_error(void **state)
{
	const char *text = "\nusername = alice\n[auth]\n";
	struct lmrsec_config *cfg = NULL;
	char *error_line = NULL;

	(void) state;
	assert_int_equal(parse_text(text, &cfg, &error_line), -EINVAL);
	assert_true(g_str_has_prefix(error_line, FILE_NAME ": line 2: "));
	free(error_line);
}

static void test_nul_byte_is_refused_with_its_line(void **state)
{
	static const char text[] = "[identity]\nmc-service-id = sip:a@b\0x\n";
	struct lmrsec_config *cfg = NULL;
	char *error_line = NULL;

	(void) state;
	assert_int_equal(config_parse_data(text, sizeof(text) - 1, FILE_NAME,
					   &cfg, &error_line), -EINVAL);
	assert_string_equal(error_line, FILE_NAME ": line 2: contains a NUL byte");
	free(error_line);
}

static void test_invalid_utf8_is_refused_with_its_line(void **state)
{
	const char *text = "[identity]\n\nmc-service-id = sip:\xff@b\n";
	struct lmrsec_config *cfg = NULL;
	char *error_line = NULL;

	(void) state;
	assert_int_equal(parse_text(text, &cfg, &error_line), -EINVAL);
	assert_string_equal(error_line, FILE_NAME ": line 3: not valid UTF-8");
	free(error_line);
}

/* --- mandatory keys ----------------------------------------------------- */

static void test_missing_mc_service_id_is_named(void **state)
{
	(void) state;
	assert_rejected("identity", "mc-service-id", NULL, "missing mandatory key");
}

static void test_missing_registrar_is_named(void **state)
{
	(void) state;
	assert_rejected("server", "registrar", NULL, "missing mandatory key");
}

static void test_missing_username_is_named(void **state)
{
	(void) state;
	assert_rejected("auth", "username", NULL, "missing mandatory key");
}

static void test_missing_password_source_is_named(void **state)
{
	(void) state;
	assert_rejected("auth", "password-source", NULL, "missing mandatory key");
}

static void test_missing_kmf_uri_is_named(void **state)
{
	(void) state;
	assert_rejected("lmr", "kmf-uri", NULL, "missing mandatory key");
}

static void test_mandatory_key_in_the_wrong_group_says_where(void **state)
{
	g_autofree char *base = minimal_with("server", "registrar", NULL);
	g_autofree char *text = g_strconcat(base, "[identity]\nregistrar = sip:mc.example.org\n", NULL);
	struct lmrsec_config *cfg = NULL;
	char *error_line = NULL;

	(void) state;
	assert_int_equal(parse_text(text, &cfg, &error_line), -EINVAL);
	assert_string_equal(error_line, FILE_NAME ": [server] registrar: "
			    "missing mandatory key (found in [identity] instead)");
	free(error_line);
}

static void test_empty_mandatory_key_is_refused(void **state)
{
	(void) state;
	assert_rejected("auth", "username", "", "empty value for a mandatory key");
}

static void test_empty_kmf_uri_list_is_refused(void **state)
{
	(void) state;
	assert_rejected("lmr", "kmf-uri", " ; ",
			"empty value for a mandatory key (expected one or more URIs separated by ';')");
}

static void test_empty_file_names_the_first_mandatory_key(void **state)
{
	struct lmrsec_config *cfg = NULL;
	char *error_line = NULL;

	(void) state;
	assert_int_equal(config_parse_data("", 0, FILE_NAME, &cfg, &error_line),
			 -EINVAL);
	assert_string_equal(error_line,
			    FILE_NAME ": [identity] mc-service-id: missing mandatory key");
	free(error_line);
}

/* --- URIs --------------------------------------------------------------- */

static void test_uri_valid_accepts_sip_and_sips(void **state)
{
	(void) state;
	assert_true(config_uri_valid("sip:alice@mc.example.org"));
	assert_true(config_uri_valid("sips:alice@mc.example.org:5061"));
	assert_true(config_uri_valid("SIP:mc.example.org;transport=tcp"));
	assert_true(config_uri_valid("sip:127.0.0.1:5060;transport=udp"));
	assert_true(config_uri_valid("sip:[::1]:5060"));
	assert_true(config_uri_valid("sip:alice@[2001:db8::1]"));
	assert_true(config_uri_valid("sip:+4930123;phone-context=x@mc.example.org;user=phone"));
	assert_true(config_uri_valid("sip:alice@mc.example.org?subject=x"));
}

static void test_uri_valid_refuses_other_schemes(void **state)
{
	(void) state;
	assert_false(config_uri_valid(NULL));
	assert_false(config_uri_valid(""));
	assert_false(config_uri_valid("mc.example.org"));
	assert_false(config_uri_valid("tel:+4930123"));
	assert_false(config_uri_valid("http://mc.example.org"));
	assert_false(config_uri_valid("<sip:alice@mc.example.org>"));
}

static void test_uri_valid_refuses_empty_user_or_host(void **state)
{
	(void) state;
	assert_false(config_uri_valid("sip:"));
	assert_false(config_uri_valid("sips:"));
	assert_false(config_uri_valid("sip:@mc.example.org"));
	assert_false(config_uri_valid("sip:alice@"));
	assert_false(config_uri_valid("sip:alice@;transport=tcp"));
	assert_false(config_uri_valid("sip:;transport=tcp"));
	assert_false(config_uri_valid("sip:[::1"));
	assert_false(config_uri_valid("sip:[nothost]"));
	assert_false(config_uri_valid("sip:alice@mc/example"));
}

static void test_uri_valid_refuses_bad_ports(void **state)
{
	(void) state;
	assert_false(config_uri_valid("sip:mc.example.org:"));
	assert_false(config_uri_valid("sip:mc.example.org:0"));
	assert_false(config_uri_valid("sip:mc.example.org:65536"));
	assert_false(config_uri_valid("sip:mc.example.org:5o60"));
	assert_true(config_uri_valid("sip:mc.example.org:65535"));
}

static void test_uri_valid_refuses_blanks_and_controls(void **state)
{
	(void) state;
	assert_false(config_uri_valid("sip:alice @mc.example.org"));
	assert_false(config_uri_valid("sip:alice@mc.example.org\t"));
	assert_false(config_uri_valid("sip:alice@mc.example.org\r\nX: y"));
	assert_false(config_uri_valid("sip:alice@mc.example.org\x7f"));
}

static void test_uri_valid_limits_length_to_1024(void **state)
{
	char uri[CONFIG_MAX_URI + 2];

	(void) state;
	memcpy(uri, "sip:", 4);
	memset(uri + 4, 'a', sizeof(uri) - 5);
	uri[CONFIG_MAX_URI] = '\0';		/* 1024 bytes */
	assert_true(config_uri_valid(uri));
	uri[CONFIG_MAX_URI] = 'a';		/* 1025 bytes */
	uri[CONFIG_MAX_URI + 1] = '\0';
	assert_false(config_uri_valid(uri));
}

static void test_malformed_mc_service_id_is_refused(void **state)
{
	(void) state;
	assert_rejected("identity", "mc-service-id", "alice@mc.example.org",
			"malformed URI \"alice@mc.example.org\" (expected sip: or sips:)");
}

static void test_malformed_public_identity_is_refused(void **state)
{
	(void) state;
	assert_rejected("identity", "public-identity", "sip:@mc.example.org",
			"malformed URI \"sip:@mc.example.org\" (empty user part before '@')");
}

static void test_malformed_registrar_is_refused(void **state)
{
	(void) state;
	assert_rejected("server", "registrar", "mc.example.org",
			"malformed URI \"mc.example.org\" (expected sip: or sips:)");
}

static void test_malformed_outbound_proxy_is_refused(void **state)
{
	(void) state;
	assert_rejected("server", "outbound-proxy", "sip:proxy:99999",
			"malformed URI \"sip:proxy:99999\" (port must be 1..65535)");
}

static void test_malformed_participating_psi_is_refused(void **state)
{
	(void) state;
	assert_rejected("server", "participating-psi", "sip:psi@",
			"malformed URI \"sip:psi@\" (empty or invalid host)");
}

static void test_malformed_kmf_uri_is_refused(void **state)
{
	(void) state;
	assert_rejected("lmr", "kmf-uri", "sip:kmf@iwf.example.org; kmf.example.org",
			"malformed URI \"kmf.example.org\" (expected sip: or sips:)");
}

static void test_malformed_trusted_sender_is_refused(void **state)
{
	(void) state;
	assert_rejected("lmr", "trusted-senders", "sips:",
			"malformed URI \"sips:\" (empty or invalid host)");
}

static void test_uri_with_blank_inside_is_refused(void **state)
{
	(void) state;
	assert_rejected("server", "registrar", "sip:mc example.org",
			"malformed URI \"sip:mc example.org\" (blank or control character)");
}

static void test_overlong_uri_is_refused_with_its_length(void **state)
{
	g_autofree char *uri = g_strnfill(CONFIG_MAX_URI + 1, 'a');

	(void) state;
	memcpy(uri, "sip:", 4);
	assert_rejected("server", "registrar", uri,
			"URI too long: 1025 bytes (at most 1024)");
}

static void test_uri_parameter_in_a_list_needs_escaping(void **state)
{
	(void) state;
	assert_rejected("lmr", "kmf-uri", "sip:kmf@iwf.example.org;transport=tcp",
			"malformed URI \"transport=tcp\" (a ';' inside a URI in a list is written \"\\;\")");
}

static void test_escaped_semicolon_keeps_a_uri_parameter_in_a_list(void **state)
{
	g_autofree char *text = minimal_with("lmr", "kmf-uri",
		"sip:kmf@iwf.example.org\\;transport=tcp;sip:kmf2@iwf.example.org");
	struct lmrsec_config *cfg = parse_ok(text);

	(void) state;
	assert_int_equal(list_length(cfg->lmr.kmf_uris), 2);
	assert_string_equal(cfg->lmr.kmf_uris[0],
			    "sip:kmf@iwf.example.org;transport=tcp");
	config_free(cfg);
}

/* --- choices ------------------------------------------------------------ */

static void test_unknown_transport_lists_the_choices(void **state)
{
	(void) state;
	assert_rejected("server", "transport", "sctp",
			"unknown transport \"sctp\" (expected udp, tcp or tls)");
}

static void test_transport_is_case_insensitive(void **state)
{
	g_autofree char *text = minimal_with("server", "transport", "UDP");
	struct lmrsec_config *cfg = parse_ok(text);

	(void) state;
	assert_int_equal(cfg->server.transport, CONFIG_TRANSPORT_UDP);
	config_free(cfg);
}

static void test_transport_name_is_the_config_word(void **state)
{
	(void) state;
	assert_string_equal(config_transport_name(CONFIG_TRANSPORT_UDP), "udp");
	assert_string_equal(config_transport_name(CONFIG_TRANSPORT_TCP), "tcp");
	assert_string_equal(config_transport_name(CONFIG_TRANSPORT_TLS), "tls");
	assert_string_equal(config_ack_mode_name(CONFIG_ACK_MODE_STORED), "stored");
	assert_string_equal(config_ack_mode_name(CONFIG_ACK_MODE_DELIVERED), "delivered");
}

static void test_unknown_ack_mode_lists_the_choices(void **state)
{
	(void) state;
	assert_rejected("delivery", "ack-mode", "never",
			"unknown ack mode \"never\" (expected stored or delivered)");
}

static void test_unknown_sender_identity_lists_the_choices(void **state)
{
	(void) state;
	assert_rejected("lmr", "sender-identity", "to",
			"unknown sender identity \"to\" (expected p-asserted-identity or from)");
}

static void test_non_boolean_verify_is_refused(void **state)
{
	(void) state;
	assert_rejected("tls", "verify", "maybe",
			"not a boolean: \"maybe\" (expected true or false)");
}

static void test_verify_false_is_warned(void **state)
{
	g_autofree char *text = minimal_with("tls", "verify", "no");
	struct lmrsec_config *cfg = parse_ok(text);

	(void) state;
	assert_false(cfg->tls.verify);
	assert_warned(cfg, FILE_NAME ": [tls] verify: certificate verification is disabled: any TLS server is accepted");
	config_free(cfg);
}

/* --- numbers ------------------------------------------------------------ */

static void test_non_numeric_expires_is_refused(void **state)
{
	(void) state;
	assert_rejected("server", "expires", "ten", "not a number: \"ten\"");
}

static void test_number_with_trailing_garbage_is_refused(void **state)
{
	(void) state;
	assert_rejected("server", "expires", "10x", "not a number: \"10x\"");
}

static void test_empty_number_is_refused(void **state)
{
	(void) state;
	assert_rejected("server", "expires", "", "not a number: \"\"");
}

static void test_signed_or_spaced_number_is_refused(void **state)
{
	(void) state;
	assert_rejected("server", "expires", "+600", "not a number: \"+600\"");
	assert_rejected("server", "expires", "6 00", "not a number: \"6 00\"");
}

static void test_expires_below_range_is_refused(void **state)
{
	(void) state;
	assert_rejected("server", "expires", "59",
			"out of range: \"59\" (expected 60..86400)");
}

static void test_expires_above_range_is_refused(void **state)
{
	(void) state;
	assert_rejected("server", "expires", "86401",
			"out of range: \"86401\" (expected 60..86400)");
}

static void test_expires_at_its_bounds_is_accepted(void **state)
{
	g_autofree char *low = minimal_with("server", "expires", "60");
	g_autofree char *high = minimal_with("server", "expires", "86400");
	struct lmrsec_config *cfg;

	(void) state;
	cfg = parse_ok(low);
	assert_int_equal(cfg->server.expires, 60);
	config_free(cfg);
	cfg = parse_ok(high);
	assert_int_equal(cfg->server.expires, 86400);
	config_free(cfg);
}

/* Below 4 s a request sent over UDP would get fewer than three
 * retransmissions; above 32 s is beyond RFC 3261's 64 x T1. */
static void test_transaction_timeout_is_bounded(void **state)
{
	g_autofree char *low = minimal_with("server", "transaction-timeout", "4");
	struct lmrsec_config *cfg;

	(void) state;
	cfg = parse_ok(low);
	assert_int_equal(cfg->server.transaction_timeout, 4);
	config_free(cfg);
	assert_rejected("server", "transaction-timeout", "3",
			"out of range: \"3\" (expected 4..32)");
	assert_rejected("server", "transaction-timeout", "33",
			"out of range: \"33\" (expected 4..32)");
	assert_rejected("server", "transaction-timeout", "8s",
			"not a number: \"8s\"");
}

static void test_negative_number_is_out_of_range(void **state)
{
	(void) state;
	assert_rejected("server", "local-port", "-1",
			"out of range: \"-1\" (expected 0..65535)");
}

static void test_overflowing_number_is_out_of_range(void **state)
{
	(void) state;
	assert_rejected("delivery", "spool-max-bytes", "99999999999999999999999",
			"out of range: \"99999999999999999999999\" (expected 1..4294967295)");
	assert_rejected("delivery", "spool-max-messages", "4294967296",
			"out of range: \"4294967296\" (expected 1..4294967295)");
}

static void test_zero_is_refused_where_at_least_one(void **state)
{
	(void) state;
	assert_rejected("delivery", "message-ttl", "0",
			"out of range: \"0\" (expected 1..4294967295)");
	assert_rejected("delivery", "delivery-timeout", "0",
			"out of range: \"0\" (expected 1..300)");
	assert_rejected("delivery", "max-payload", "65536",
			"out of range: \"65536\" (expected 1..65535)");
}

static void test_max_body_smaller_than_max_payload_is_refused(void **state)
{
	(void) state;
	assert_rejected("delivery", "max-body", "1000",
			"1000 is smaller than max-payload (65535)");
}

static void test_retry_max_below_retry_min_is_refused(void **state)
{
	(void) state;
	assert_rejected("registration", "retry-min", "600",
			"600 is larger than retry-max (300)");
}

static void test_lowered_retry_bounds_are_accepted(void **state)
{
	const char *extra = "[registration]\nretry-min = 1\nretry-max = 2\n";
	g_autofree char *base = minimal_with(NULL, NULL, NULL);
	g_autofree char *text = g_strconcat(base, extra, NULL);
	struct lmrsec_config *cfg = parse_ok(text);

	(void) state;
	assert_int_equal(cfg->registration.retry_min, 1);
	assert_int_equal(cfg->registration.retry_max, 2);
	config_free(cfg);
}

/* --- credentials -------------------------------------------------------- */

static void test_password_source_credential_is_read(void **state)
{
	g_autofree char *text = minimal_with("auth", "password-source", "credential");
	struct lmrsec_config *cfg = parse_ok(text);

	(void) state;
	assert_int_equal(cfg->auth.password_source, CONFIG_PASSWORD_CREDENTIAL);
	assert_null(cfg->auth.password_file);
	config_free(cfg);
}

static void test_password_file_with_relative_path_is_refused(void **state)
{
	(void) state;
	assert_rejected("auth", "password-source", "file:etc/sip-password",
			"\"file:etc/sip-password\": the file's path must be absolute (file:/path/to/file)");
	assert_rejected("auth", "password-source", "file:",
			"\"file:\": the file's path must be absolute (file:/path/to/file)");
}

static void test_unknown_password_source_is_not_echoed(void **state)
{
	(void) state;
	assert_rejected("auth", "password-source", "hunter2",
			"unknown password source (expected secret-service, credential or file:PATH)");
}

static void test_password_key_is_refused(void **state)
{
	(void) state;
	assert_rejected("auth", "password", "hunter2",
			"a password is not accepted in the configuration file; set password-source to secret-service, credential or file:PATH");
}

/* --- lists and other values ------------------------------------------- */

static void test_trusted_senders_default_to_kmf_uris(void **state)
{
	g_autofree char *text = minimal_with("lmr", "kmf-uri",
		"sip:kmf1@iwf.example.org;sip:kmf2@iwf.example.org");
	struct lmrsec_config *cfg = parse_ok(text);

	(void) state;
	assert_int_equal(list_length(cfg->lmr.trusted_senders), 2);
	assert_string_equal(cfg->lmr.trusted_senders[0], "sip:kmf1@iwf.example.org");
	assert_string_equal(cfg->lmr.trusted_senders[1], "sip:kmf2@iwf.example.org");
	assert_true(cfg->lmr.trusted_senders != cfg->lmr.kmf_uris);
	config_free(cfg);
}

static void test_multiple_kmf_uris_are_kept_in_order(void **state)
{
	g_autofree char *text = minimal_with("lmr", "kmf-uri",
		" sip:kmf1@iwf.example.org ; ; sips:kmf2@iwf.example.org:5061;sip:kmf3@10.0.0.1 ;");
	struct lmrsec_config *cfg = parse_ok(text);

	(void) state;
	assert_int_equal(list_length(cfg->lmr.kmf_uris), 3);
	assert_string_equal(cfg->lmr.kmf_uris[0], "sip:kmf1@iwf.example.org");
	assert_string_equal(cfg->lmr.kmf_uris[1], "sips:kmf2@iwf.example.org:5061");
	assert_string_equal(cfg->lmr.kmf_uris[2], "sip:kmf3@10.0.0.1");
	assert_null(cfg->lmr.kmf_uris[3]);
	config_free(cfg);
}

static void test_empty_optional_key_means_unset(void **state)
{
	g_autofree char *text = minimal_with("server", "outbound-proxy", "");
	struct lmrsec_config *cfg = parse_ok(text);

	(void) state;
	assert_string_equal(cfg->server.outbound_proxy, cfg->server.registrar);
	config_free(cfg);
}

static void test_values_are_stripped_of_blanks(void **state)
{
	g_autofree char *text = minimal_with("server", "participating-psi",
					     "sip:psi@mc.example.org   ");
	struct lmrsec_config *cfg = parse_ok(text);

	(void) state;
	assert_string_equal(cfg->server.participating_psi, "sip:psi@mc.example.org");
	config_free(cfg);
}

static void test_malformed_instance_id_is_refused(void **state)
{
	(void) state;
	assert_rejected("identity", "instance-id", "f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
			"malformed instance ID \"f81d4fae-7dec-11d0-a765-00a0c91e6bf6\" (expected urn:uuid:xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
}

static void test_local_address_accepts_ip_literals_and_names(void **state)
{
	const char *good[] = { "127.0.0.1", "::1", "fe80::1", "device.example.org", "localhost" };

	(void) state;
	for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
		g_autofree char *text = minimal_with("server", "local-address", good[i]);
		struct lmrsec_config *cfg = parse_ok(text);

		assert_string_equal(cfg->server.local_address, good[i]);
		config_free(cfg);
	}
}

static void test_bad_local_address_is_refused(void **state)
{
	(void) state;
	assert_rejected("server", "local-address", "[::1]",
			"not an IP address or host name: \"[::1]\"");
	assert_rejected("server", "local-address", "-bad.example.org",
			"not an IP address or host name: \"-bad.example.org\"");
}

static void test_relative_state_dir_is_refused(void **state)
{
	(void) state;
	assert_rejected("paths", "state-dir", "lmrsec/state",
			"not an absolute path: \"lmrsec/state\"");
}

static void test_socket_path_too_long_is_refused(void **state)
{
	g_autofree char *path = g_strnfill(CONFIG_MAX_SOCKET_PATH + 1, 'a');
	g_autofree char *problem = g_strdup_printf(
		"too long for a Unix socket: %d bytes (at most %d)",
		CONFIG_MAX_SOCKET_PATH + 1, CONFIG_MAX_SOCKET_PATH);

	(void) state;
	path[0] = '/';
	assert_rejected("socket", "path", path, problem);
}

static void test_bad_account_name_is_refused(void **state)
{
	(void) state;
	assert_rejected("socket", "allowed-users", "alice;bad:name",
			"invalid name \"bad:name\" (no blank, control character or ':')");
	assert_rejected("socket", "group", "two words",
			"invalid name \"two words\" (no blank, control character or ':')");
}

/* --- warnings ----------------------------------------------------------- */

static void test_unknown_key_is_a_warning(void **state)
{
	g_autofree char *text = minimal_with("server", "colour", "blue");
	struct lmrsec_config *cfg = parse_ok(text);

	(void) state;
	assert_int_equal(list_length(cfg->warnings), 1);
	assert_warned(cfg, FILE_NAME ": [server] colour: unknown key (ignored)");
	config_free(cfg);
}

static void test_misspelt_key_suggests_the_right_one(void **state)
{
	g_autofree char *text = minimal_with("server", "expiers", "300");
	struct lmrsec_config *cfg = parse_ok(text);

	(void) state;
	assert_int_equal(cfg->server.expires, 600);
	assert_warned(cfg, FILE_NAME ": [server] expiers: unknown key (ignored; did you mean expires?)");
	config_free(cfg);
}

static void test_key_in_the_wrong_group_names_its_group(void **state)
{
	g_autofree char *text = minimal_with("server", "state-dir", "/var/lib/x");
	struct lmrsec_config *cfg = parse_ok(text);

	(void) state;
	assert_warned(cfg, FILE_NAME ": [server] state-dir: unknown key in this group (ignored; it belongs in [paths])");
	config_free(cfg);
}

static void test_unknown_group_is_a_warning(void **state)
{
	g_autofree char *text = minimal_with("delivry", "ack-mode", "delivered");
	struct lmrsec_config *cfg = parse_ok(text);

	(void) state;
	assert_int_equal(cfg->delivery.ack_mode, CONFIG_ACK_MODE_STORED);
	assert_int_equal(list_length(cfg->warnings), 1);
	assert_warned(cfg, FILE_NAME ": [delivry]: unknown group (ignored; did you mean [delivery]?)");
	config_free(cfg);
}

static void test_repeated_key_is_a_warning(void **state)
{
	const char *extra = "[lmr]\nkmf-uri = sip:other@iwf.example.org\n";
	g_autofree char *base = minimal_with(NULL, NULL, NULL);
	g_autofree char *text = g_strconcat(base, extra, NULL);
	struct lmrsec_config *cfg = parse_ok(text);

	(void) state;
	assert_string_equal(cfg->lmr.kmf_uris[0], "sip:other@iwf.example.org");
	assert_warned(cfg, FILE_NAME ": [lmr] kmf-uri: given more than once; only the last value is used");
	config_free(cfg);
}

/* --- the error line ----------------------------------------------------- */

static void test_error_line_is_one_line_naming_file_group_key(void **state)
{
	/* "\n" is a GKeyFile escape: the value really holds a newline. */
	g_autofree char *text = minimal_with("server", "transport", "tcp\\nX");
	struct lmrsec_config *cfg = NULL;
	char *error_line = NULL;

	(void) state;
	assert_int_equal(parse_text(text, &cfg, &error_line), -EINVAL);
	assert_null(strchr(error_line, '\n'));
	assert_non_null(strstr(error_line, FILE_NAME));
	assert_non_null(strstr(error_line, "[server]"));
	assert_non_null(strstr(error_line, "transport"));
	free(error_line);
}

static void test_error_line_escapes_control_characters_in_file_name(void **state)
{
	g_autofree char *text = minimal_with("server", "transport", "sctp");
	struct lmrsec_config *cfg = NULL;
	char *error_line = NULL;

	(void) state;
	assert_int_equal(config_parse_data(text, strlen(text), "/tmp/a\nb.conf",
					   &cfg, &error_line), -EINVAL);
	assert_null(strchr(error_line, '\n'));
	assert_true(g_str_has_prefix(error_line, "/tmp/a?b.conf: [server] transport: "));
	free(error_line);
}

static void test_long_value_is_cut_in_the_error_line(void **state)
{
	g_autofree char *value = g_strnfill(500, 'x');
	struct lmrsec_config *cfg = NULL;
	char *error_line = NULL;
	g_autofree char *text = minimal_with("server", "transport", value);

	(void) state;
	assert_int_equal(parse_text(text, &cfg, &error_line), -EINVAL);
	assert_true(strlen(error_line) < 200);
	assert_non_null(strstr(error_line, "\"... (expected udp, tcp or tls)"));
	free(error_line);
}

static void test_null_error_line_is_allowed(void **state)
{
	g_autofree char *text = minimal_with("server", "transport", "sctp");
	struct lmrsec_config *cfg = NULL;

	(void) state;
	assert_int_equal(parse_text(text, &cfg, NULL), -EINVAL);
	assert_null(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal_file_gets_all_defaults),
		cmocka_unit_test(test_full_file_sets_every_key),
		cmocka_unit_test(test_example_file_in_docs_is_valid),
		cmocka_unit_test(test_load_reads_a_file),
		cmocka_unit_test(test_load_missing_file_says_cannot_read),
		cmocka_unit_test(test_load_refuses_a_file_over_the_limit),
		cmocka_unit_test(test_syntax_error_names_the_line),
		cmocka_unit_test(test_key_before_any_group_is_a_syntax_error),
		cmocka_unit_test(test_nul_byte_is_refused_with_its_line),
		cmocka_unit_test(test_invalid_utf8_is_refused_with_its_line),
		cmocka_unit_test(test_missing_mc_service_id_is_named),
		cmocka_unit_test(test_missing_registrar_is_named),
		cmocka_unit_test(test_missing_username_is_named),
		cmocka_unit_test(test_missing_password_source_is_named),
		cmocka_unit_test(test_missing_kmf_uri_is_named),
		cmocka_unit_test(test_mandatory_key_in_the_wrong_group_says_where),
		cmocka_unit_test(test_empty_mandatory_key_is_refused),
		cmocka_unit_test(test_empty_kmf_uri_list_is_refused),
		cmocka_unit_test(test_empty_file_names_the_first_mandatory_key),
		cmocka_unit_test(test_uri_valid_accepts_sip_and_sips),
		cmocka_unit_test(test_uri_valid_refuses_other_schemes),
		cmocka_unit_test(test_uri_valid_refuses_empty_user_or_host),
		cmocka_unit_test(test_uri_valid_refuses_bad_ports),
		cmocka_unit_test(test_uri_valid_refuses_blanks_and_controls),
		cmocka_unit_test(test_uri_valid_limits_length_to_1024),
		cmocka_unit_test(test_malformed_mc_service_id_is_refused),
		cmocka_unit_test(test_malformed_public_identity_is_refused),
		cmocka_unit_test(test_malformed_registrar_is_refused),
		cmocka_unit_test(test_malformed_outbound_proxy_is_refused),
		cmocka_unit_test(test_malformed_participating_psi_is_refused),
		cmocka_unit_test(test_malformed_kmf_uri_is_refused),
		cmocka_unit_test(test_malformed_trusted_sender_is_refused),
		cmocka_unit_test(test_uri_with_blank_inside_is_refused),
		cmocka_unit_test(test_overlong_uri_is_refused_with_its_length),
		cmocka_unit_test(test_uri_parameter_in_a_list_needs_escaping),
		cmocka_unit_test(test_escaped_semicolon_keeps_a_uri_parameter_in_a_list),
		cmocka_unit_test(test_unknown_transport_lists_the_choices),
		cmocka_unit_test(test_transport_is_case_insensitive),
		cmocka_unit_test(test_transport_name_is_the_config_word),
		cmocka_unit_test(test_unknown_ack_mode_lists_the_choices),
		cmocka_unit_test(test_unknown_sender_identity_lists_the_choices),
		cmocka_unit_test(test_non_boolean_verify_is_refused),
		cmocka_unit_test(test_verify_false_is_warned),
		cmocka_unit_test(test_non_numeric_expires_is_refused),
		cmocka_unit_test(test_number_with_trailing_garbage_is_refused),
		cmocka_unit_test(test_empty_number_is_refused),
		cmocka_unit_test(test_signed_or_spaced_number_is_refused),
		cmocka_unit_test(test_expires_below_range_is_refused),
		cmocka_unit_test(test_expires_above_range_is_refused),
		cmocka_unit_test(test_expires_at_its_bounds_is_accepted),
		cmocka_unit_test(test_transaction_timeout_is_bounded),
		cmocka_unit_test(test_negative_number_is_out_of_range),
		cmocka_unit_test(test_overflowing_number_is_out_of_range),
		cmocka_unit_test(test_zero_is_refused_where_at_least_one),
		cmocka_unit_test(test_max_body_smaller_than_max_payload_is_refused),
		cmocka_unit_test(test_retry_max_below_retry_min_is_refused),
		cmocka_unit_test(test_lowered_retry_bounds_are_accepted),
		cmocka_unit_test(test_password_source_credential_is_read),
		cmocka_unit_test(test_password_file_with_relative_path_is_refused),
		cmocka_unit_test(test_unknown_password_source_is_not_echoed),
		cmocka_unit_test(test_password_key_is_refused),
		cmocka_unit_test(test_trusted_senders_default_to_kmf_uris),
		cmocka_unit_test(test_multiple_kmf_uris_are_kept_in_order),
		cmocka_unit_test(test_empty_optional_key_means_unset),
		cmocka_unit_test(test_values_are_stripped_of_blanks),
		cmocka_unit_test(test_malformed_instance_id_is_refused),
		cmocka_unit_test(test_local_address_accepts_ip_literals_and_names),
		cmocka_unit_test(test_bad_local_address_is_refused),
		cmocka_unit_test(test_relative_state_dir_is_refused),
		cmocka_unit_test(test_socket_path_too_long_is_refused),
		cmocka_unit_test(test_bad_account_name_is_refused),
		cmocka_unit_test(test_unknown_key_is_a_warning),
		cmocka_unit_test(test_misspelt_key_suggests_the_right_one),
		cmocka_unit_test(test_key_in_the_wrong_group_names_its_group),
		cmocka_unit_test(test_unknown_group_is_a_warning),
		cmocka_unit_test(test_repeated_key_is_a_warning),
		cmocka_unit_test(test_error_line_is_one_line_naming_file_group_key),
		cmocka_unit_test(test_error_line_escapes_control_characters_in_file_name),
		cmocka_unit_test(test_long_value_is_cut_in_the_error_line),
		cmocka_unit_test(test_null_error_line_is_allowed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
