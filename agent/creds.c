/*
 * creds — reading the SIP password (see creds.h).  The Secret Service part
 * is secret.c, shared with `lmrsecctl credentials`.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "creds.h"
#include "secret.h"

static int refuse(char **error, int err, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static int refuse(char **error, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	*error = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	return err;
}

/* The file's owner and mode, checked on the open descriptor so the checks
 * and the read see the same file. */
static int check_file(int fd, const char *path, char **error)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return refuse(error, -errno, "%s: cannot stat: %s", path, g_strerror(errno));
	if (!S_ISREG(st.st_mode))
		return refuse(error, -EINVAL, "%s: password file is not a regular file", path);
	if (st.st_uid != geteuid())
		return refuse(error, -EPERM, "%s: password file must be owned by uid %u (is %u)",
			      path, (unsigned)geteuid(), (unsigned)st.st_uid);
	if (st.st_mode & 077)
		return refuse(error, -EPERM, "%s: password file must be mode 0600, is %04o "
			      "(chmod 600 %s)", path, (unsigned)(st.st_mode & 07777), path);
	return 0;
}

static int read_all(int fd, char *buf, size_t cap, size_t *len)
{
	size_t n = 0;

	for (;;) {
		ssize_t k = read(fd, buf + n, cap - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		n += (size_t)k;
		if (n == cap)
			return -EFBIG;
	}
	*len = n;
	return 0;
}

int creds_read_file(const char *path, char **password, char **error)
{
	char buf[CREDS_MAX_PASSWORD + 2];
	size_t len = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return refuse(error, -errno, "%s: cannot open password file: %s",
			      path, g_strerror(errno));
	r = check_file(fd, path, error);
	if (r == 0) {
		r = read_all(fd, buf, sizeof(buf), &len);
		if (r < 0)
			refuse(error, r, "%s: cannot read password file: %s", path,
			       r == -EFBIG ? "longer than 1024 bytes" : g_strerror(-r));
	}
	close(fd);
	while (r == 0 && len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (r == 0 && (len == 0 || memchr(buf, '\0', len)))
		r = refuse(error, -EINVAL, "%s: password file is empty or holds a NUL byte", path);
	if (r == 0)
		*password = g_strndup(buf, len);
	explicit_bzero(buf, sizeof(buf));
	return r;
}

/* The Secret Service says what is wrong (no bus, no service, locked,
 * nothing stored, no answer); we add where else a password may come from. */
static int read_secret_service(const struct lmrsec_config *cfg, char **password,
			       char **error)
{
	char *why = NULL;
	int r;

	r = secret_lookup(cfg->identity.mc_service_id, cfg->auth.username, password, &why);
	if (r == 0)
		return 0;
	r = refuse(error, r, "password-source = secret-service: %s; the other sources are "
		   "password-source = credential ($CREDENTIALS_DIRECTORY/%s, systemd "
		   "LoadCredential=) and file:PATH", why, CREDS_CREDENTIAL_NAME);
	g_free(why);
	return r;
}

int creds_password(const struct lmrsec_config *cfg, char **password, char **error)
{
	const char *dir;
	g_autofree char *path = NULL;

	*password = NULL;
	*error = NULL;
	switch (cfg->auth.password_source) {
	case CONFIG_PASSWORD_FILE:
		return creds_read_file(cfg->auth.password_file, password, error);
	case CONFIG_PASSWORD_CREDENTIAL:
		dir = g_getenv("CREDENTIALS_DIRECTORY");
		if (!dir)
			return refuse(error, -ENOENT, "password-source = credential, but "
				      "$CREDENTIALS_DIRECTORY is not set (start the agent with "
				      "systemd LoadCredential=%s:..., or use file:PATH)",
				      CREDS_CREDENTIAL_NAME);
		path = g_build_filename(dir, CREDS_CREDENTIAL_NAME, NULL);
		return creds_read_file(path, password, error);
	case CONFIG_PASSWORD_SECRET_SERVICE:
		return read_secret_service(cfg, password, error);
	}
	return refuse(error, -EINVAL, "unknown password-source");
}

void creds_free(char *password)
{
	if (!password)
		return;
	explicit_bzero(password, strlen(password));
	g_free(password);
}
