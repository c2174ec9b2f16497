/*
 * notify — sd_notify(3) datagrams to $NOTIFY_SOCKET (see notify.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>

#include "notify.h"

/* The address $NOTIFY_SOCKET names: an absolute path, or "@name" for the
 * abstract namespace.  Returns the address length or -EINVAL. */
static int notify_address(const char *name, struct sockaddr_un *sa)
{
	size_t len = strlen(name);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (name[0] != '/' && name[0] != '@')
		return -EINVAL;
	if (len < 2 || len >= sizeof(sa->sun_path))
		return -EINVAL;
	memcpy(sa->sun_path, name, len);
	if (name[0] == '@') {
		sa->sun_path[0] = '\0';
		return (int)(offsetof(struct sockaddr_un, sun_path) + len);
	}
	return (int)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}

int notify_send(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	size_t len = state ? strlen(state) : 0;
	int fd, salen, err = 0;

	if (!name || !*name)
		return 0;
	if (len == 0 || len > NOTIFY_MAX_STATE)
		return -EINVAL;
	salen = notify_address(name, &sa);
	if (salen < 0)
		return salen;

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, state, len, MSG_NOSIGNAL, (struct sockaddr *)&sa, (socklen_t)salen) < 0)
		err = -errno;
	close(fd);
	return err < 0 ? err : 1;
}

int notify_sendf(const char *fmt, ...)
{
	g_autofree char *state = NULL;
	va_list ap;

	va_start(ap, fmt);
	state = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	return notify_send(state);
}

static uint64_t parse_u64(const char *s)
{
	unsigned long long v;
	char *end;

	if (!s || s[0] < '0' || s[0] > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return 0;
	return v;
}

uint64_t notify_watchdog_usec(void)
{
	const char *pid = getenv("WATCHDOG_PID");

	if (pid && parse_u64(pid) != (uint64_t)getpid())
		return 0;
	return parse_u64(getenv("WATCHDOG_USEC"));
}

static gboolean on_watchdog(gpointer data)
{
	(void)data;
	notify_send("WATCHDOG=1");
	return G_SOURCE_CONTINUE;
}

unsigned notify_watchdog_start(void)
{
	uint64_t usec = notify_watchdog_usec();
	uint64_t ms = usec / 2000;

	if (usec == 0)
		return 0;
	if (ms == 0)
		ms = 1;
	if (ms > G_MAXUINT)
		ms = G_MAXUINT;
	notify_send("WATCHDOG=1");
	return g_timeout_add((guint)ms, on_watchdog, NULL);
}

void notify_status_text(enum broker_reg_state state, unsigned last_status,
			const char *reason, char *buf, size_t size)
{
	const char *name = broker_reg_state_name(state);

	if (last_status)
		snprintf(buf, size, "registration: %s (last answer %u %s)", name,
			 last_status, reason ? reason : "");
	else
		snprintf(buf, size, "registration: %s", name);
	/* The reason phrase comes from the network: one line, no injected
	 * "READY=1" or other assignment. */
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

void notify_broker_event(void *ctx, const struct broker_event *ev)
{
	char text[256];

	(void)ctx;
	if (ev->kind != BROKER_EVENT_REGISTRATION)
		return;
	notify_status_text(ev->reg_state, ev->sip_status, ev->reason, text, sizeof(text));
	notify_sendf("STATUS=%s", text);
}
