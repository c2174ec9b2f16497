/*
 * The agent's configuration file: see config.h for the decisions and
 * docs/config-example.conf for every key.
 *
 * GKeyFile does the syntax; this file checks each value and turns the first
 * problem into one line, "FILE: [group] key: problem", that the agent prints
 * before it stops.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#define QUOTE_MAX		64	/* bytes of a value echoed in a message */
#define NAME_MAX_LEN		256	/* a user or group name */
#define HOSTNAME_MAX		253
#define MAX_BODY_LIMIT		16777216
#define SUGGEST_MAX_LEN		64	/* longest name we look for a near match of */

/* Every group and key we read, to tell a typo from a setting. */
static const char *const identity_keys[] = {
	"mc-service-id", "public-identity", "instance-id", NULL };
static const char *const server_keys[] = {
	"registrar", "outbound-proxy", "participating-psi", "transport",
	"expires", "local-address", "local-port", "transaction-timeout", NULL };
static const char *const auth_keys[] = {
	"username", "password-source", "realm", "password", NULL };
static const char *const lmr_keys[] = {
	"kmf-uri", "trusted-senders", "sender-identity", NULL };
static const char *const tls_keys[] = {
	"certificate-dir", "verify", NULL };
static const char *const delivery_keys[] = {
	"ack-mode", "delivery-timeout", "max-payload", "max-body",
	"spool-max-messages", "spool-max-bytes", "message-ttl", NULL };
static const char *const socket_keys[] = {
	"path", "group", "allowed-users", "allowed-groups", "max-connections",
	"frame-timeout", NULL };
static const char *const paths_keys[] = {
	"state-dir", NULL };
static const char *const registration_keys[] = {
	"retry-min", "retry-max", NULL };

static const struct known_group {
	const char *name;
	const char *const *keys;
} known_groups[] = {
	{ "identity", identity_keys },
	{ "server", server_keys },
	{ "auth", auth_keys },
	{ "lmr", lmr_keys },
	{ "tls", tls_keys },
	{ "delivery", delivery_keys },
	{ "socket", socket_keys },
	{ "paths", paths_keys },
	{ "registration", registration_keys },
	{ NULL, NULL },
};

struct choice {
	const char *name;
	int value;
};

static const struct choice transport_choices[] = {
	{ "udp", CONFIG_TRANSPORT_UDP },
	{ "tcp", CONFIG_TRANSPORT_TCP },
	{ "tls", CONFIG_TRANSPORT_TLS },
	{ NULL, 0 },
};

static const struct choice ack_mode_choices[] = {
	{ "stored", CONFIG_ACK_MODE_STORED },
	{ "delivered", CONFIG_ACK_MODE_DELIVERED },
	{ NULL, 0 },
};

static const struct choice sender_identity_choices[] = {
	{ "p-asserted-identity", CONFIG_SENDER_IDENTITY_P_ASSERTED_IDENTITY },
	{ "from", CONFIG_SENDER_IDENTITY_FROM },
	{ NULL, 0 },
};

static const struct choice bool_choices[] = {
	{ "true", 1 }, { "false", 0 },
	{ "yes", 1 }, { "no", 0 },
	{ "1", 1 }, { "0", 0 },
	{ NULL, 0 },
};

enum uri_problem {
	URI_OK,
	URI_TOO_LONG,
	URI_SCHEME,
	URI_CHARACTER,
	URI_USER,
	URI_HOST,
	URI_PORT,
};

struct parse {
	GKeyFile *kf;
	const char *filename;
	char *error_line;	/* the first problem only */
	GPtrArray *warnings;
};

/* --- messages ----------------------------------------------------------- */

/* Whatever a value or a file name holds, the message stays one line. */
static void flatten(char *line)
{
	for (unsigned char *c = (unsigned char *) line; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			*c = '?';
}

/* A value as shown in a message: quoted, escaped, cut at QUOTE_MAX bytes. */
static char *quote(const char *value)
{
	size_t len = strlen(value);
	size_t shown = len;
	GString *s = g_string_new("\"");

	if (shown > QUOTE_MAX) {
		shown = QUOTE_MAX;
		while (shown > 0 && ((unsigned char) value[shown] & 0xc0) == 0x80)
			shown--;	/* never cut a UTF-8 sequence */
	}

	for (size_t i = 0; i < shown; i++) {
		unsigned char c = value[i];

		if (c == '"' || c == '\\')
			g_string_append_printf(s, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			g_string_append_printf(s, "\\x%02x", c);
		else
			g_string_append_c(s, c);
	}

	g_string_append_c(s, '"');
	if (shown < len)
		g_string_append(s, "...");

	return g_string_free(s, FALSE);
}

G_GNUC_PRINTF(4, 0)
static char *format_line(const char *filename, const char *group,
			 const char *key, const char *fmt, va_list ap)
{
	g_autofree char *problem = g_strdup_vprintf(fmt, ap);
	char *line;

	if (!group)
		line = g_strdup_printf("%s: %s", filename, problem);
	else if (!key)
		line = g_strdup_printf("%s: [%s]: %s", filename, group, problem);
	else
		line = g_strdup_printf("%s: [%s] %s: %s", filename, group, key,
				       problem);

	flatten(line);
	return line;
}

/* Records the first problem; returns -EINVAL for the caller to pass up. */
G_GNUC_PRINTF(4, 5)
static int fail(struct parse *p, const char *group, const char *key,
		const char *fmt, ...)
{
	va_list ap;

	if (p->error_line)
		return -EINVAL;

	va_start(ap, fmt);
	p->error_line = format_line(p->filename, group, key, fmt, ap);
	va_end(ap);

	return -EINVAL;
}

G_GNUC_PRINTF(4, 5)
static void warn(struct parse *p, const char *group, const char *key,
		 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_ptr_array_add(p->warnings,
			format_line(p->filename, group, key, fmt, ap));
	va_end(ap);
}

/* --- pure checks -------------------------------------------------------- */

static bool has_control(const char *s)
{
	for (const unsigned char *c = (const unsigned char *) s; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			return true;

	return false;
}

static bool has_blank_or_control(const char *s)
{
	for (const unsigned char *c = (const unsigned char *) s; *c; c++)
		if (*c <= 0x20 || *c == 0x7f)
			return true;

	return false;
}

static bool ipv6_literal_valid(const char *s, size_t len)
{
	char buf[INET6_ADDRSTRLEN + 1];
	struct in6_addr addr;

	if (len == 0 || len >= sizeof(buf))
		return false;

	memcpy(buf, s, len);
	buf[len] = '\0';

	return inet_pton(AF_INET6, buf, &addr) == 1;
}

static bool uri_host_char(char c)
{
	return g_ascii_isalnum(c) || c == '-' || c == '.' || c == '_';
}

/* An optional ":port" after the host: 1..65535. */
static enum uri_problem check_port(const char *s, size_t len)
{
	unsigned long port = 0;

	if (len == 0)
		return URI_OK;
	if (s[0] != ':' || len < 2 || len > 6)
		return URI_PORT;

	for (size_t i = 1; i < len; i++) {
		if (!g_ascii_isdigit(s[i]))
			return URI_PORT;
		port = port * 10 + (unsigned long) (s[i] - '0');
	}

	return port >= 1 && port <= 65535 ? URI_OK : URI_PORT;
}

/* host[:port] or [ipv6][:port], len bytes (up to the first ';' or '?') */
static enum uri_problem check_hostport(const char *s, size_t len)
{
	size_t host_len = 0;

	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (!close || !ipv6_literal_valid(s + 1, close - s - 1))
			return URI_HOST;

		host_len = close - s + 1;
	} else {
		while (host_len < len && uri_host_char(s[host_len]))
			host_len++;

		if (host_len == 0 || (host_len < len && s[host_len] != ':'))
			return URI_HOST;
	}

	return check_port(s + host_len, len - host_len);
}

static enum uri_problem uri_check(const char *uri)
{
	const char *rest, *end, *at = NULL;
	size_t len;

	if (!uri)
		return URI_SCHEME;

	len = strlen(uri);
	if (len > CONFIG_MAX_URI)
		return URI_TOO_LONG;
	if (has_blank_or_control(uri))
		return URI_CHARACTER;

	if (g_ascii_strncasecmp(uri, "sip:", 4) == 0)
		rest = uri + 4;
	else if (g_ascii_strncasecmp(uri, "sips:", 5) == 0)
		rest = uri + 5;
	else
		return URI_SCHEME;

	/* A user part may itself hold ';' (RFC 3261 user-unreserved), so the
	 * host starts after the last '@' before any headers. */
	end = rest + strcspn(rest, "?");
	for (const char *c = rest; c < end; c++)
		if (*c == '@')
			at = c;

	if (at) {
		if (at == rest)
			return URI_USER;
		rest = at + 1;
	}

	return check_hostport(rest, strcspn(rest, ";?"));
}

bool config_uri_valid(const char *uri)
{
	return uri_check(uri) == URI_OK;
}

static bool hostname_valid(const char *s)
{
	size_t len = strlen(s);
	size_t label = 0;

	if (len == 0 || len > HOSTNAME_MAX)
		return false;

	for (size_t i = 0; i <= len; i++) {
		if (s[i] == '.' || s[i] == '\0') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!g_ascii_isalnum(s[i]) && s[i] != '-')
			return false;
		if (label == 0 && s[i] == '-')
			return false;
		label++;
	}

	return true;
}

static bool address_valid(const char *s)
{
	struct in_addr v4;
	struct in6_addr v6;

	return inet_pton(AF_INET, s, &v4) == 1 ||
		inet_pton(AF_INET6, s, &v6) == 1 || hostname_valid(s);
}

/* A user or group name as the agent will look it up: no blank, no ':'. */
static bool account_name_valid(const char *s)
{
	size_t len = strlen(s);

	return len > 0 && len <= NAME_MAX_LEN && !has_blank_or_control(s) &&
		!strchr(s, ':');
}

/* 0, -EINVAL (not a plain decimal number) or -ERANGE (negative, overflow) */
static int parse_decimal(const char *s, uint64_t *out)
{
	bool negative = false, overflow = false;
	uint64_t v = 0;

	if (*s == '-') {
		negative = true;
		s++;
	}
	if (*s == '\0')
		return -EINVAL;

	for (; *s; s++) {
		unsigned int digit;

		if (!g_ascii_isdigit(*s))
			return -EINVAL;

		digit = *s - '0';
		if (v > (UINT64_MAX - digit) / 10)
			overflow = true;
		else
			v = v * 10 + digit;
	}

	if (negative || overflow)
		return -ERANGE;

	*out = v;
	return 0;
}

/* Levenshtein distance, for "did you mean"; SIZE_MAX for long names. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t prev[SUGGEST_MAX_LEN + 1], cur[SUGGEST_MAX_LEN + 1];

	if (la > SUGGEST_MAX_LEN || lb > SUGGEST_MAX_LEN)
		return SIZE_MAX;

	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;

	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;

			cur[j] = MIN(sub, MIN(del, ins));
		}
		memcpy(prev, cur, sizeof(prev));
	}

	return prev[lb];
}

static const char *nearest(const char *name, const char *const *candidates)
{
	for (size_t i = 0; candidates[i]; i++)
		if (edit_distance(name, candidates[i]) <= 2)
			return candidates[i];

	return NULL;
}

/* --- typed getters ------------------------------------------------------ */

/* GKeyFile's unescaping failed: say why without echoing the bytes. */
static int fail_value(struct parse *p, const char *group, const char *key,
		      const GError *err)
{
	if (err->domain == G_KEY_FILE_ERROR &&
	    err->code == G_KEY_FILE_ERROR_UNKNOWN_ENCODING)
		return fail(p, group, key, "value is not valid UTF-8");
	if (err->domain == G_KEY_FILE_ERROR &&
	    err->code == G_KEY_FILE_ERROR_INVALID_VALUE)
		return fail(p, group, key,
			    "invalid escape sequence in value (use \\s \\n \\t \\r \\\\, or \\; in a list)");

	return fail(p, group, key, "%s", err->message);
}

/*
 * The stripped value of group.key, possibly empty, or NULL when the key is
 * absent. Control characters (from \n, \t… escapes) are refused.
 */
static int get_text(struct parse *p, const char *group, const char *key,
		    char **out)
{
	GError *err = NULL;
	char *value;
	int r;

	*out = NULL;
	if (!g_key_file_has_key(p->kf, group, key, NULL))
		return 0;

	value = g_key_file_get_string(p->kf, group, key, &err);
	if (!value) {
		r = fail_value(p, group, key, err);
		g_error_free(err);
		return r;
	}

	g_strstrip(value);
	if (has_control(value)) {
		g_free(value);
		return fail(p, group, key, "control character in value");
	}

	*out = value;
	return 0;
}

/* A key put in the wrong group is the likely cause: say where it is. */
static int fail_missing(struct parse *p, const char *group, const char *key)
{
	g_auto(GStrv) groups = g_key_file_get_groups(p->kf, NULL);

	for (size_t i = 0; groups[i]; i++)
		if (strcmp(groups[i], group) != 0 &&
		    g_key_file_has_key(p->kf, groups[i], key, NULL))
			return fail(p, group, key,
				    "missing mandatory key (found in [%s] instead)",
				    groups[i]);

	return fail(p, group, key, "missing mandatory key");
}

/* Absent or empty: *out stays NULL. */
static int get_optional(struct parse *p, const char *group, const char *key,
			char **out)
{
	char *value;
	int r;

	r = get_text(p, group, key, &value);
	if (r < 0)
		return r;

	if (value && value[0] == '\0') {
		g_free(value);
		value = NULL;
	}

	*out = value;
	return 0;
}

static int get_mandatory(struct parse *p, const char *group, const char *key,
			 char **out)
{
	char *value;
	int r;

	r = get_text(p, group, key, &value);
	if (r < 0)
		return r;

	if (!value)
		return fail_missing(p, group, key);

	if (value[0] == '\0') {
		g_free(value);
		return fail(p, group, key, "empty value for a mandatory key");
	}

	*out = value;
	return 0;
}

static int fail_uri(struct parse *p, const char *group, const char *key,
		    const char *uri, enum uri_problem problem)
{
	g_autofree char *quoted = quote(uri);

	switch (problem) {
	case URI_OK:
		return 0;
	case URI_TOO_LONG:
		return fail(p, group, key, "URI too long: %zu bytes (at most %d)",
			    strlen(uri), CONFIG_MAX_URI);
	case URI_SCHEME:
		return fail(p, group, key,
			    "malformed URI %s (expected sip: or sips:)", quoted);
	case URI_CHARACTER:
		return fail(p, group, key,
			    "malformed URI %s (blank or control character)",
			    quoted);
	case URI_USER:
		return fail(p, group, key,
			    "malformed URI %s (empty user part before '@')",
			    quoted);
	case URI_HOST:
		return fail(p, group, key,
			    "malformed URI %s (empty or invalid host)", quoted);
	case URI_PORT:
		return fail(p, group, key,
			    "malformed URI %s (port must be 1..65535)", quoted);
	}

	return -EINVAL;
}

static int get_uri(struct parse *p, const char *group, const char *key,
		   bool mandatory, char **out)
{
	enum uri_problem problem;
	char *value;
	int r;

	if (mandatory)
		r = get_mandatory(p, group, key, &value);
	else
		r = get_optional(p, group, key, &value);
	if (r < 0 || !value)
		return r;

	problem = uri_check(value);
	if (problem != URI_OK) {
		r = fail_uri(p, group, key, value, problem);
		g_free(value);
		return r;
	}

	*out = value;
	return 0;
}

typedef int (*element_check_fn)(struct parse *p, const char *group,
				const char *key, const char *element);

static int check_uri_element(struct parse *p, const char *group,
			     const char *key, const char *element)
{
	enum uri_problem problem = uri_check(element);
	g_autofree char *quoted = NULL;

	if (problem != URI_SCHEME || !strchr(element, '='))
		return fail_uri(p, group, key, element, problem);

	/* "sip:kmf@x;transport=tcp" split at its ';' into two elements */
	quoted = quote(element);
	return fail(p, group, key,
		    "malformed URI %s (a ';' inside a URI in a list is written \"\\;\")",
		    quoted);
}

static int check_name_element(struct parse *p, const char *group,
			      const char *key, const char *element)
{
	g_autofree char *quoted = NULL;

	if (account_name_valid(element))
		return 0;

	quoted = quote(element);
	return fail(p, group, key,
		    "invalid name %s (no blank, control character or ':')",
		    quoted);
}

/* A ';' list with blank elements dropped; NULL when absent or empty. */
static int get_list(struct parse *p, const char *group, const char *key,
		    element_check_fn check, char ***out)
{
	g_auto(GStrv) raw = NULL;
	GPtrArray *list;
	GError *err = NULL;
	int r;

	*out = NULL;
	if (!g_key_file_has_key(p->kf, group, key, NULL))
		return 0;

	raw = g_key_file_get_string_list(p->kf, group, key, NULL, &err);
	if (!raw) {
		if (!err)
			return 0;	/* an empty value */
		r = fail_value(p, group, key, err);
		g_error_free(err);
		return r;
	}

	list = g_ptr_array_new_with_free_func(g_free);
	for (size_t i = 0; raw[i]; i++) {
		char *element = g_strstrip(raw[i]);

		if (element[0] == '\0')
			continue;

		r = check(p, group, key, element);
		if (r < 0) {
			g_ptr_array_free(list, TRUE);
			return r;
		}
		g_ptr_array_add(list, g_strdup(element));
	}

	if (list->len == 0) {
		g_ptr_array_free(list, TRUE);
		return 0;
	}

	g_ptr_array_set_free_func(list, NULL);
	g_ptr_array_add(list, NULL);
	*out = (char **) g_ptr_array_free(list, FALSE);
	return 0;
}

static int get_uri_list(struct parse *p, const char *group, const char *key,
			bool mandatory, char ***out)
{
	int r;

	r = get_list(p, group, key, check_uri_element, out);
	if (r < 0 || *out || !mandatory)
		return r;

	if (!g_key_file_has_key(p->kf, group, key, NULL))
		return fail_missing(p, group, key);

	return fail(p, group, key,
		    "empty value for a mandatory key (expected one or more URIs separated by ';')");
}

/* An optional list of account names; an empty list when absent. */
static int get_name_list(struct parse *p, const char *group, const char *key,
			 char ***out)
{
	int r;

	r = get_list(p, group, key, check_name_element, out);
	if (r < 0)
		return r;

	if (!*out)
		*out = g_new0(char *, 1);

	return 0;
}

/* Absent: *inout keeps its default. */
static int get_uint(struct parse *p, const char *group, const char *key,
		    unsigned int min, unsigned int max, unsigned int *inout)
{
	g_autofree char *value = NULL;
	g_autofree char *quoted = NULL;
	uint64_t v = 0;
	int r;

	r = get_text(p, group, key, &value);
	if (r < 0 || !value)
		return r;

	quoted = quote(value);
	r = parse_decimal(value, &v);
	if (r == -EINVAL)
		return fail(p, group, key, "not a number: %s", quoted);

	if (r == -ERANGE || v < min || v > max)
		return fail(p, group, key, "out of range: %s (expected %u..%u)",
			    quoted, min, max);

	*inout = (unsigned int) v;
	return 0;
}

/* "udp, tcp or tls" */
static char *choice_list(const struct choice *choices)
{
	GString *s = g_string_new(NULL);

	for (size_t i = 0; choices[i].name; i++) {
		if (i > 0)
			g_string_append(s, choices[i + 1].name ? ", " : " or ");
		g_string_append(s, choices[i].name);
	}

	return g_string_free(s, FALSE);
}

/* Absent: *inout keeps its default. what names the setting in messages. */
static int get_choice(struct parse *p, const char *group, const char *key,
		      const struct choice *choices, const char *what,
		      int *inout)
{
	g_autofree char *value = NULL;
	g_autofree char *quoted = NULL;
	g_autofree char *expected = NULL;
	int r;

	r = get_text(p, group, key, &value);
	if (r < 0 || !value)
		return r;

	for (size_t i = 0; choices[i].name; i++) {
		if (g_ascii_strcasecmp(value, choices[i].name) == 0) {
			*inout = choices[i].value;
			return 0;
		}
	}

	quoted = quote(value);
	expected = choice_list(choices);
	return fail(p, group, key, "unknown %s %s (expected %s)", what, quoted,
		    expected);
}

static int get_bool(struct parse *p, const char *group, const char *key,
		    bool *inout)
{
	g_autofree char *value = NULL;
	g_autofree char *quoted = NULL;
	int r;

	r = get_text(p, group, key, &value);
	if (r < 0 || !value)
		return r;

	for (size_t i = 0; bool_choices[i].name; i++) {
		if (g_ascii_strcasecmp(value, bool_choices[i].name) == 0) {
			*inout = bool_choices[i].value;
			return 0;
		}
	}

	quoted = quote(value);
	return fail(p, group, key, "not a boolean: %s (expected true or false)",
		    quoted);
}

/* Optional; relative paths would depend on the agent's working directory. */
static int get_path(struct parse *p, const char *group, const char *key,
		    char **out)
{
	g_autofree char *quoted = NULL;
	char *value;
	int r;

	r = get_optional(p, group, key, &value);
	if (r < 0 || !value)
		return r;

	if (!g_path_is_absolute(value)) {
		quoted = quote(value);
		g_free(value);
		return fail(p, group, key, "not an absolute path: %s", quoted);
	}

	*out = value;
	return 0;
}

/* --- groups ------------------------------------------------------------- */

static int parse_instance_id(struct parse *p, struct config_identity *id)
{
	g_autofree char *quoted = NULL;
	char *value;
	int r;

	r = get_optional(p, "identity", "instance-id", &value);
	if (r < 0 || !value)
		return r;

	if (g_ascii_strncasecmp(value, "urn:uuid:", 9) != 0 ||
	    !g_uuid_string_is_valid(value + 9)) {
		quoted = quote(value);
		g_free(value);
		return fail(p, "identity", "instance-id",
			    "malformed instance ID %s (expected urn:uuid:xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
			    quoted);
	}

	id->instance_id = value;
	return 0;
}

static int parse_identity(struct parse *p, struct config_identity *id)
{
	int r;

	r = get_uri(p, "identity", "mc-service-id", true, &id->mc_service_id);
	if (r < 0)
		return r;

	r = get_uri(p, "identity", "public-identity", false,
		    &id->public_identity);
	if (r < 0)
		return r;

	if (!id->public_identity)
		id->public_identity = g_strdup(id->mc_service_id);

	return parse_instance_id(p, id);
}

static int parse_local_address(struct parse *p, struct config_server *server)
{
	g_autofree char *quoted = NULL;
	char *value;
	int r;

	r = get_optional(p, "server", "local-address", &value);
	if (r < 0 || !value)
		return r;

	if (!address_valid(value)) {
		quoted = quote(value);
		g_free(value);
		return fail(p, "server", "local-address",
			    "not an IP address or host name: %s", quoted);
	}

	server->local_address = value;
	return 0;
}

static int parse_server(struct parse *p, struct config_server *server)
{
	int transport = CONFIG_TRANSPORT_TCP;
	int r;

	r = get_uri(p, "server", "registrar", true, &server->registrar);
	if (r < 0)
		return r;

	r = get_uri(p, "server", "outbound-proxy", false,
		    &server->outbound_proxy);
	if (r < 0)
		return r;

	/* DESIGN §2: every request goes through the registrar when no proxy */
	if (!server->outbound_proxy)
		server->outbound_proxy = g_strdup(server->registrar);

	r = get_uri(p, "server", "participating-psi", false,
		    &server->participating_psi);
	if (r < 0)
		return r;

	r = get_choice(p, "server", "transport", transport_choices,
		       "transport", &transport);
	if (r < 0)
		return r;
	server->transport = transport;

	server->expires = CONFIG_DEFAULT_EXPIRES;
	r = get_uint(p, "server", "expires", 60, 86400, &server->expires);
	if (r < 0)
		return r;

	r = parse_local_address(p, server);
	if (r < 0)
		return r;

	server->local_port = 0;
	r = get_uint(p, "server", "local-port", 0, 65535, &server->local_port);
	if (r < 0)
		return r;

	server->transaction_timeout = CONFIG_DEFAULT_TRANSACTION_TIMEOUT;
	return get_uint(p, "server", "transaction-timeout", 4, 32,
			&server->transaction_timeout);
}

static int parse_password_source(struct parse *p, struct config_auth *auth)
{
	g_autofree char *value = NULL;
	g_autofree char *quoted = NULL;
	const char *path;
	int r;

	r = get_mandatory(p, "auth", "password-source", &value);
	if (r < 0)
		return r;

	if (g_ascii_strcasecmp(value, "secret-service") == 0) {
		auth->password_source = CONFIG_PASSWORD_SECRET_SERVICE;
		return 0;
	}
	if (g_ascii_strcasecmp(value, "credential") == 0) {
		auth->password_source = CONFIG_PASSWORD_CREDENTIAL;
		return 0;
	}

	/* Not echoed: it could be the password itself, written here by mistake. */
	if (g_ascii_strncasecmp(value, "file:", 5) != 0)
		return fail(p, "auth", "password-source",
			    "unknown password source (expected secret-service, credential or file:PATH)");

	quoted = quote(value);

	path = value + 5;
	while (g_ascii_isspace(*path))
		path++;

	if (!g_path_is_absolute(path))
		return fail(p, "auth", "password-source",
			    "%s: the file's path must be absolute (file:/path/to/file)",
			    quoted);

	auth->password_source = CONFIG_PASSWORD_FILE;
	auth->password_file = g_strdup(path);
	return 0;
}

static int parse_auth(struct parse *p, struct config_auth *auth)
{
	int r;

	/* DESIGN §5: credentials never in the main configuration */
	if (g_key_file_has_key(p->kf, "auth", "password", NULL))
		return fail(p, "auth", "password",
			    "a password is not accepted in the configuration file; set password-source to secret-service, credential or file:PATH");

	r = get_mandatory(p, "auth", "username", &auth->username);
	if (r < 0)
		return r;

	r = parse_password_source(p, auth);
	if (r < 0)
		return r;

	return get_optional(p, "auth", "realm", &auth->realm);
}

static int parse_lmr(struct parse *p, struct config_lmr *lmr)
{
	int sender = CONFIG_SENDER_IDENTITY_P_ASSERTED_IDENTITY;
	int r;

	r = get_uri_list(p, "lmr", "kmf-uri", true, &lmr->kmf_uris);
	if (r < 0)
		return r;

	r = get_uri_list(p, "lmr", "trusted-senders", false,
			 &lmr->trusted_senders);
	if (r < 0)
		return r;

	if (!lmr->trusted_senders)
		lmr->trusted_senders = g_strdupv(lmr->kmf_uris);

	r = get_choice(p, "lmr", "sender-identity", sender_identity_choices,
		       "sender identity", &sender);
	if (r < 0)
		return r;

	lmr->sender_identity = sender;
	return 0;
}

static int parse_tls(struct parse *p, struct config_tls *tls)
{
	int r;

	r = get_path(p, "tls", "certificate-dir", &tls->certificate_dir);
	if (r < 0)
		return r;

	tls->verify = true;
	r = get_bool(p, "tls", "verify", &tls->verify);
	if (r < 0)
		return r;

	if (!tls->verify)
		warn(p, "tls", "verify",
		     "certificate verification is disabled: any TLS server is accepted");

	return 0;
}

static int parse_delivery_numbers(struct parse *p, struct config_delivery *d)
{
	int r;

	d->delivery_timeout = CONFIG_DEFAULT_DELIVERY_TIMEOUT;
	r = get_uint(p, "delivery", "delivery-timeout", 1, 300,
		     &d->delivery_timeout);
	if (r < 0)
		return r;

	d->max_payload = CONFIG_DEFAULT_MAX_PAYLOAD;
	r = get_uint(p, "delivery", "max-payload", 1, 65535, &d->max_payload);
	if (r < 0)
		return r;

	d->max_body = CONFIG_DEFAULT_MAX_BODY;
	r = get_uint(p, "delivery", "max-body", 1, MAX_BODY_LIMIT,
		     &d->max_body);
	if (r < 0)
		return r;

	d->spool_max_messages = CONFIG_DEFAULT_SPOOL_MAX_MESSAGES;
	r = get_uint(p, "delivery", "spool-max-messages", 1, UINT_MAX,
		     &d->spool_max_messages);
	if (r < 0)
		return r;

	d->spool_max_bytes = CONFIG_DEFAULT_SPOOL_MAX_BYTES;
	r = get_uint(p, "delivery", "spool-max-bytes", 1, UINT_MAX,
		     &d->spool_max_bytes);
	if (r < 0)
		return r;

	d->message_ttl = CONFIG_DEFAULT_MESSAGE_TTL;
	return get_uint(p, "delivery", "message-ttl", 1, UINT_MAX,
			&d->message_ttl);
}

/* A body must be able to carry the largest payload we accept. */
static int check_body_fits_payload(struct parse *p,
				   const struct config_delivery *d)
{
	if (d->max_body >= d->max_payload)
		return 0;

	if (g_key_file_has_key(p->kf, "delivery", "max-body", NULL))
		return fail(p, "delivery", "max-body",
			    "%u is smaller than max-payload (%u)",
			    d->max_body, d->max_payload);

	return fail(p, "delivery", "max-payload",
		    "%u is larger than max-body (%u)", d->max_payload,
		    d->max_body);
}

static int parse_delivery(struct parse *p, struct config_delivery *d)
{
	int ack_mode = CONFIG_ACK_MODE_STORED;
	int r;

	r = get_choice(p, "delivery", "ack-mode", ack_mode_choices,
		       "ack mode", &ack_mode);
	if (r < 0)
		return r;
	d->ack_mode = ack_mode;

	r = parse_delivery_numbers(p, d);
	if (r < 0)
		return r;

	return check_body_fits_payload(p, d);
}

static int parse_socket_path(struct parse *p, struct config_socket *s)
{
	int r;

	r = get_path(p, "socket", "path", &s->path);
	if (r < 0 || !s->path)
		return r;

	if (strlen(s->path) > CONFIG_MAX_SOCKET_PATH)
		return fail(p, "socket", "path",
			    "too long for a Unix socket: %zu bytes (at most %d)",
			    strlen(s->path), CONFIG_MAX_SOCKET_PATH);

	return 0;
}

static int parse_socket(struct parse *p, struct config_socket *s)
{
	int r;

	r = parse_socket_path(p, s);
	if (r < 0)
		return r;

	r = get_optional(p, "socket", "group", &s->group);
	if (r < 0)
		return r;

	if (s->group) {
		r = check_name_element(p, "socket", "group", s->group);
		if (r < 0)
			return r;
	}

	r = get_name_list(p, "socket", "allowed-users", &s->allowed_users);
	if (r < 0)
		return r;

	r = get_name_list(p, "socket", "allowed-groups", &s->allowed_groups);
	if (r < 0)
		return r;

	s->max_connections = CONFIG_DEFAULT_MAX_CONNECTIONS;
	r = get_uint(p, "socket", "max-connections", 1, 65536, &s->max_connections);
	if (r < 0)
		return r;

	s->frame_timeout = CONFIG_DEFAULT_FRAME_TIMEOUT;
	return get_uint(p, "socket", "frame-timeout", 1, 3600, &s->frame_timeout);
}

static int parse_registration(struct parse *p, struct config_registration *reg)
{
	int r;

	reg->retry_min = CONFIG_DEFAULT_RETRY_MIN;
	r = get_uint(p, "registration", "retry-min", 1, 86400, &reg->retry_min);
	if (r < 0)
		return r;

	reg->retry_max = CONFIG_DEFAULT_RETRY_MAX;
	r = get_uint(p, "registration", "retry-max", 1, 86400, &reg->retry_max);
	if (r < 0)
		return r;

	if (reg->retry_min <= reg->retry_max)
		return 0;

	if (g_key_file_has_key(p->kf, "registration", "retry-max", NULL))
		return fail(p, "registration", "retry-max",
			    "%u is smaller than retry-min (%u)",
			    reg->retry_max, reg->retry_min);

	return fail(p, "registration", "retry-min",
		    "%u is larger than retry-max (%u)", reg->retry_min,
		    reg->retry_max);
}

static int parse_groups(struct parse *p, struct lmrsec_config *cfg)
{
	int r;

	r = parse_identity(p, &cfg->identity);
	if (r < 0)
		return r;

	r = parse_server(p, &cfg->server);
	if (r < 0)
		return r;

	r = parse_auth(p, &cfg->auth);
	if (r < 0)
		return r;

	r = parse_lmr(p, &cfg->lmr);
	if (r < 0)
		return r;

	r = parse_tls(p, &cfg->tls);
	if (r < 0)
		return r;

	r = parse_delivery(p, &cfg->delivery);
	if (r < 0)
		return r;

	r = parse_socket(p, &cfg->socket);
	if (r < 0)
		return r;

	r = get_path(p, "paths", "state-dir", &cfg->paths.state_dir);
	if (r < 0)
		return r;

	return parse_registration(p, &cfg->registration);
}

/* --- typos -------------------------------------------------------------- */

static const struct known_group *find_group(const char *name)
{
	for (const struct known_group *g = known_groups; g->name; g++)
		if (strcmp(g->name, name) == 0)
			return g;

	return NULL;
}

static bool key_known(const struct known_group *group, const char *key)
{
	for (size_t i = 0; group->keys[i]; i++)
		if (strcmp(group->keys[i], key) == 0)
			return true;

	return false;
}

static void warn_unknown_group(struct parse *p, const char *name)
{
	const char *names[G_N_ELEMENTS(known_groups)];
	const char *near;

	for (size_t i = 0; i < G_N_ELEMENTS(known_groups); i++)
		names[i] = known_groups[i].name;

	near = nearest(name, names);
	if (near)
		warn(p, name, NULL, "unknown group (ignored; did you mean [%s]?)",
		     near);
	else
		warn(p, name, NULL, "unknown group (ignored)");
}

static void warn_unknown_key(struct parse *p, const struct known_group *group,
			     const char *key)
{
	const char *near = nearest(key, group->keys);

	if (near) {
		warn(p, group->name, key,
		     "unknown key (ignored; did you mean %s?)", near);
		return;
	}

	for (const struct known_group *g = known_groups; g->name; g++) {
		if (key_known(g, key)) {
			warn(p, group->name, key,
			     "unknown key in this group (ignored; it belongs in [%s])",
			     g->name);
			return;
		}
	}

	warn(p, group->name, key, "unknown key (ignored)");
}

static void warn_keys(struct parse *p, const struct known_group *group)
{
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
	g_auto(GStrv) keys = g_key_file_get_keys(p->kf, group->name, NULL,
						 NULL);

	for (size_t i = 0; keys && keys[i]; i++) {
		/* GKeyFile lists a repeated key once per line, keeps the last */
		if (!g_hash_table_add(seen, keys[i])) {
			warn(p, group->name, keys[i],
			     "given more than once; only the last value is used");
			continue;
		}

		if (!key_known(group, keys[i]))
			warn_unknown_key(p, group, keys[i]);
	}
}

static void warn_typos(struct parse *p)
{
	g_auto(GStrv) groups = g_key_file_get_groups(p->kf, NULL);

	for (size_t i = 0; groups[i]; i++) {
		const struct known_group *group = find_group(groups[i]);

		if (group)
			warn_keys(p, group);
		else
			warn_unknown_group(p, groups[i]);
	}
}

/* --- syntax ------------------------------------------------------------- */

static size_t line_number_at(const char *data, size_t offset)
{
	size_t line = 1;

	for (size_t i = 0; i < offset; i++)
		if (data[i] == '\n')
			line++;

	return line;
}

/* The configuration is text: UTF-8 without NUL bytes. */
static int check_text(struct parse *p, const char *data, size_t len)
{
	const char *nul = memchr(data, '\0', len);
	const char *end;

	if (nul)
		return fail(p, NULL, NULL, "line %zu: contains a NUL byte",
			    line_number_at(data, nul - data));

	if (!g_utf8_validate_len(data, len, &end))
		return fail(p, NULL, NULL, "line %zu: not valid UTF-8",
			    line_number_at(data, end - data));

	return 0;
}

/* Bytes of the first n lines (with their '\n'), or all of them. */
static size_t lines_prefix(const char *data, size_t len, size_t n)
{
	for (size_t i = 0; i < len; i++)
		if (data[i] == '\n' && --n == 0)
			return i + 1;

	return len;
}

static bool prefix_loads(const char *data, size_t len)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();

	return g_key_file_load_from_data(kf, data, len, G_KEY_FILE_NONE, NULL);
}

/*
 * GKeyFile stops at the first bad line but does not say which; find the
 * shortest run of whole lines that fails to load.
 */
static int fail_syntax(struct parse *p, const char *data, size_t len,
		       const GError *err)
{
	size_t lo = 1, hi = line_number_at(data, len);

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (prefix_loads(data, lines_prefix(data, len, mid)))
			lo = mid + 1;
		else
			hi = mid;
	}

	return fail(p, NULL, NULL, "line %zu: %s", hi, err->message);
}

static int load_key_file(struct parse *p, const char *data, size_t len)
{
	GError *err = NULL;
	int r;

	if (len > CONFIG_MAX_FILE_SIZE) {
		fail(p, NULL, NULL, "file too large: %zu bytes (at most %d)", len,
		     CONFIG_MAX_FILE_SIZE);
		return -EFBIG;
	}

	r = check_text(p, data, len);
	if (r < 0)
		return r;

	if (g_key_file_load_from_data(p->kf, data, len, G_KEY_FILE_NONE, &err))
		return 0;

	r = fail_syntax(p, data, len, err);
	g_error_free(err);
	return r;
}

/* --- public ------------------------------------------------------------- */

int config_parse_data(const char *data, size_t len, const char *filename,
		      struct lmrsec_config **out, char **error_line)
{
	struct parse p = {
		.kf = g_key_file_new(),
		.filename = filename ? filename : "(configuration)",
		.warnings = g_ptr_array_new_with_free_func(g_free),
	};
	struct lmrsec_config *cfg = g_new0(struct lmrsec_config, 1);
	int r;

	*out = NULL;
	if (error_line)
		*error_line = NULL;

	r = load_key_file(&p, data ? data : "", data ? len : 0);
	if (r == 0)
		r = parse_groups(&p, cfg);

	if (r == 0) {
		warn_typos(&p);
		g_ptr_array_set_free_func(p.warnings, NULL);
		g_ptr_array_add(p.warnings, NULL);
		cfg->warnings = (char **) g_ptr_array_free(p.warnings, FALSE);
		*out = cfg;
	} else {
		g_ptr_array_free(p.warnings, TRUE);
		config_free(cfg);
	}

	if (error_line)
		*error_line = p.error_line;
	else
		g_free(p.error_line);

	g_key_file_free(p.kf);
	return r;
}

/* Whole file, wiped as it grows: it may hold a password put there by mistake. */
static int read_all(int fd, char **out, size_t *out_len)
{
	size_t cap = 4096, len = 0;
	char *buf = g_malloc(cap);

	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *bigger;

			if (cap > CONFIG_MAX_FILE_SIZE) {
				explicit_bzero(buf, len);
				g_free(buf);
				return -EFBIG;
			}
			bigger = g_malloc(cap * 2);
			memcpy(bigger, buf, len);
			explicit_bzero(buf, len);
			g_free(buf);
			buf = bigger;
			cap *= 2;
		}

		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;

			explicit_bzero(buf, len);
			g_free(buf);
			return -err;
		}
		if (n == 0)
			break;
		len += n;
	}

	*out = buf;
	*out_len = len;
	return 0;
}

static int read_file(const char *path, char **out, size_t *len)
{
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;

	r = read_all(fd, out, len);
	close(fd);

	if (r == 0 && *len > CONFIG_MAX_FILE_SIZE) {
		explicit_bzero(*out, *len);
		g_free(*out);
		r = -EFBIG;
	}

	return r;
}

int config_load(const char *path, struct lmrsec_config **out,
		char **error_line)
{
	char *data = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if (error_line)
		*error_line = NULL;

	r = read_file(path, &data, &len);
	if (r < 0) {
		if (error_line && r == -EFBIG)
			*error_line = g_strdup_printf("%s: cannot read: file too large (more than %d bytes)",
						      path, CONFIG_MAX_FILE_SIZE);
		else if (error_line)
			*error_line = g_strdup_printf("%s: cannot read: %s",
						      path, g_strerror(-r));
		if (error_line)
			flatten(*error_line);
		return r;
	}

	r = config_parse_data(data, len, path, out, error_line);
	explicit_bzero(data, len);
	g_free(data);
	return r;
}

void config_free(struct lmrsec_config *config)
{
	if (!config)
		return;

	g_free(config->identity.mc_service_id);
	g_free(config->identity.public_identity);
	g_free(config->identity.instance_id);
	g_free(config->server.registrar);
	g_free(config->server.outbound_proxy);
	g_free(config->server.participating_psi);
	g_free(config->server.local_address);
	g_free(config->auth.username);
	g_free(config->auth.password_file);
	g_free(config->auth.realm);
	g_strfreev(config->lmr.kmf_uris);
	g_strfreev(config->lmr.trusted_senders);
	g_free(config->tls.certificate_dir);
	g_free(config->socket.path);
	g_free(config->socket.group);
	g_strfreev(config->socket.allowed_users);
	g_strfreev(config->socket.allowed_groups);
	g_free(config->paths.state_dir);
	g_strfreev(config->warnings);
	g_free(config);
}

char *config_default_path(void)
{
	if (geteuid() == 0)
		return g_strdup(CONFIG_SYSTEM_PATH);
	return g_build_filename(g_get_user_config_dir(), "lmrsec", "agent.conf", NULL);
}

const char *config_transport_name(enum config_transport transport)
{
	switch (transport) {
	case CONFIG_TRANSPORT_UDP:
		return "udp";
	case CONFIG_TRANSPORT_TCP:
		return "tcp";
	case CONFIG_TRANSPORT_TLS:
		return "tls";
	}

	return "unknown";
}

const char *config_ack_mode_name(enum config_ack_mode mode)
{
	switch (mode) {
	case CONFIG_ACK_MODE_STORED:
		return "stored";
	case CONFIG_ACK_MODE_DELIVERED:
		return "delivered";
	}

	return "unknown";
}
