/*
 * test-notify.c — sd_notify datagrams against a socket the test binds, as
 * systemd's would be: READY/STATUS/WATCHDOG text, path and abstract
 * addresses, no socket at all, the watchdog's environment and timer.
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
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>

#include "notify.h"

struct listener {
	int fd;
	char dir[64];
	char name[100];		/* what goes into $NOTIFY_SOCKET */
};

static int bind_path(void **state)
{
	struct listener *l = calloc(1, sizeof(*l));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	strcpy(l->dir, "/tmp/test-notify.XXXXXX");
	assert_non_null(mkdtemp(l->dir));
	snprintf(l->name, sizeof(l->name), "%s/notify", l->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", l->name);
	l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(l->fd >= 0);
	assert_int_equal(bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setenv("NOTIFY_SOCKET", l->name, 1);
	*state = l;
	return 0;
}

static int bind_abstract(void **state)
{
	struct listener *l = calloc(1, sizeof(*l));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;

	snprintf(l->name, sizeof(l->name), "@lmrsec-test-notify-%d", (int)getpid());
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(l->name));
	memcpy(sa.sun_path + 1, l->name + 1, strlen(l->name) - 1);
	l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(l->fd >= 0);
	assert_int_equal(bind(l->fd, (struct sockaddr *)&sa, len), 0);
	setenv("NOTIFY_SOCKET", l->name, 1);
	*state = l;
	return 0;
}

static int unbind(void **state)
{
	struct listener *l = *state;

	close(l->fd);
	if (l->dir[0]) {
		unlink(l->name);
		rmdir(l->dir);
	}
	free(l);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	return 0;
}

/* The next datagram, or "" when none is waiting. */
static const char *next_datagram(struct listener *l)
{
	static char buf[NOTIFY_MAX_STATE + 1];
	ssize_t n = recv(l->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	buf[n < 0 ? 0 : n] = '\0';
	return buf;
}

static void test_ready_to_path(void **state)
{
	struct listener *l = *state;

	assert_int_equal(notify_send("READY=1\nSTATUS=listening"), 1);
	assert_string_equal(next_datagram(l), "READY=1\nSTATUS=listening");
	assert_string_equal(next_datagram(l), "");
}

static void test_abstract_socket(void **state)
{
	struct listener *l = *state;

	assert_int_equal(notify_sendf("STATUS=%s", "registration: registered"), 1);
	assert_string_equal(next_datagram(l), "STATUS=registration: registered");
}

static void test_no_socket_is_a_no_op(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(notify_send("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	assert_int_equal(notify_send("READY=1"), 0);
	unsetenv("NOTIFY_SOCKET");
}

static void test_bad_address_and_state(void **state)
{
	char longname[200];

	(void)state;
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(notify_send("READY=1"), -EINVAL);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longname, 1);
	assert_int_equal(notify_send("READY=1"), -EINVAL);
	setenv("NOTIFY_SOCKET", "/nonexistent/lmrsec-notify", 1);
	assert_int_equal(notify_send("READY=1"), -ENOENT);
	assert_int_equal(notify_send(""), -EINVAL);
	unsetenv("NOTIFY_SOCKET");
}

static void test_status_follows_registration(void **state)
{
	struct listener *l = *state;
	struct broker_event ev = {
		.kind = BROKER_EVENT_REGISTRATION, .reg_state = BROKER_REG_REGISTERED,
		.sip_status = 200, .reason = "OK",
	};
	struct broker_event other = { .kind = BROKER_EVENT_RECEIVED, .id = 7 };

	notify_broker_event(NULL, &ev);
	assert_string_equal(next_datagram(l), "STATUS=registration: registered (last answer 200 OK)");
	ev.reg_state = BROKER_REG_FAILED;
	ev.sip_status = 403;
	ev.reason = "Forbidden\nREADY=1";	/* a hostile reason phrase stays on its line */
	notify_broker_event(NULL, &ev);
	assert_string_equal(next_datagram(l),
			    "STATUS=registration: failed (last answer 403 Forbidden?READY=1)");
	ev.reg_state = BROKER_REG_REGISTERING;
	ev.sip_status = 0;
	notify_broker_event(NULL, &ev);
	assert_string_equal(next_datagram(l), "STATUS=registration: registering");
	notify_broker_event(NULL, &other);	/* not a registration change: nothing */
	assert_string_equal(next_datagram(l), "");
}

static void test_watchdog_environment(void **state)
{
	char pid[32];

	(void)state;
	unsetenv("WATCHDOG_PID");
	unsetenv("WATCHDOG_USEC");
	assert_int_equal(notify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "20000000", 1);
	assert_int_equal(notify_watchdog_usec(), 20000000);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(notify_watchdog_usec(), 20000000);
	snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
	setenv("WATCHDOG_PID", pid, 1);		/* meant for another process */
	assert_int_equal(notify_watchdog_usec(), 0);
	unsetenv("WATCHDOG_PID");
	setenv("WATCHDOG_USEC", "-5", 1);
	assert_int_equal(notify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "12x", 1);
	assert_int_equal(notify_watchdog_usec(), 0);
	unsetenv("WATCHDOG_USEC");
	assert_int_equal(notify_watchdog_start(), 0);
}

static gboolean quit_loop(gpointer loop)
{
	g_main_loop_quit(loop);
	return G_SOURCE_REMOVE;
}

/* WATCHDOG_USEC=100 ms: one ping at once, then one every 50 ms. */
static void test_watchdog_pings(void **state)
{
	struct listener *l = *state;
	GMainLoop *loop = g_main_loop_new(NULL, FALSE);
	unsigned source, pings = 0;

	setenv("WATCHDOG_USEC", "100000", 1);
	source = notify_watchdog_start();
	assert_true(source > 0);
	assert_string_equal(next_datagram(l), "WATCHDOG=1");
	g_timeout_add(300, quit_loop, loop);
	g_main_loop_run(loop);
	while (strcmp(next_datagram(l), "WATCHDOG=1") == 0)
		pings++;
	assert_in_range(pings, 2, 6);	/* ~5; fewer on a loaded machine */
	g_source_remove(source);
	g_main_loop_unref(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ready_to_path, bind_path, unbind),
		cmocka_unit_test_setup_teardown(test_abstract_socket, bind_abstract, unbind),
		cmocka_unit_test(test_no_socket_is_a_no_op),
		cmocka_unit_test(test_bad_address_and_state),
		cmocka_unit_test_setup_teardown(test_status_follows_registration, bind_path, unbind),
		cmocka_unit_test(test_watchdog_environment),
		cmocka_unit_test_setup_teardown(test_watchdog_pings, bind_path, unbind),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
