/*
 * Unit tests for agent/spool.c, against real SQLite files in a mkdtemp dir.
 *
 * Built and run by hand (from the top of the tree) with:
 *   gcc -std=gnu11 -Wall -Wextra -Werror -g -Iagent \
 *       tests/unit/test-spool.c agent/spool.c \
 *       $(pkg-config --cflags --libs sqlite3 cmocka) -o test-spool && ./test-spool
 * and under the sanitizers with:
 *   gcc -std=gnu11 -Wall -Wextra -Werror -g -fsanitize=address,undefined \
 *       -fno-omit-frame-pointer -Iagent tests/unit/test-spool.c agent/spool.c \
 *       $(pkg-config --cflags --libs sqlite3 cmocka) -o test-spool-asan && \
 *   ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 ./test-spool-asan
 *
 * Failures are provoked three ways, none needing privileges (the tests run
 * as root, where chmod 0400 blocks nothing): SQLite's own limits on the
 * spool's connection (query_only, max_page_count), a second connection
 * holding the write lock, and a fault-injecting VFS wrapped around "unix".
 * The spool's connection is reached through an SQLite auto-extension that
 * records every handle opened, so spool.h needs no test-only API.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "spool.h"

#define BIG_PAYLOAD_LEN		60000

struct fixture {
	char dir[64];
	char path[128];
	struct spool *spool;
};

/* --- the last SQLite connection opened in this process --- */

static sqlite3 *last_db;

static int capture_db(sqlite3 *db, const char **err,
		      const struct sqlite3_api_routines *api)
{
	(void) err;
	(void) api;
	last_db = db;
	return SQLITE_OK;
}

static int64_t db_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void db_exec(sqlite3 *db, const char *sql)
{
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

/* Runs sql on the closed database at path through a connection of our own. */
static void db_set(const char *path, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	db_exec(db, sql);
	sqlite3_close(db);
}

/* --- a VFS around "unix" that fails writes or syncs on demand --- */

struct fault_file {
	sqlite3_file base;
	sqlite3_file *real;	/* allocated right after this struct */
};

static sqlite3_vfs *unix_vfs;
static int fault_write_rc = SQLITE_OK;
static int fault_sync_rc = SQLITE_OK;

static sqlite3_file *real_of(sqlite3_file *f)
{
	return ((struct fault_file *) f)->real;
}

static int ff_close(sqlite3_file *f)
{
	return real_of(f)->pMethods->xClose(real_of(f));
}

static int ff_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	return real_of(f)->pMethods->xRead(real_of(f), buf, n, off);
}

static int ff_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	if (fault_write_rc != SQLITE_OK)
		return fault_write_rc;

	return real_of(f)->pMethods->xWrite(real_of(f), buf, n, off);
}

static int ff_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return real_of(f)->pMethods->xTruncate(real_of(f), size);
}

static int ff_sync(sqlite3_file *f, int flags)
{
	if (fault_sync_rc != SQLITE_OK)
		return fault_sync_rc;

	return real_of(f)->pMethods->xSync(real_of(f), flags);
}

static int ff_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return real_of(f)->pMethods->xFileSize(real_of(f), size);
}

static int ff_lock(sqlite3_file *f, int lock)
{
	return real_of(f)->pMethods->xLock(real_of(f), lock);
}

static int ff_unlock(sqlite3_file *f, int lock)
{
	return real_of(f)->pMethods->xUnlock(real_of(f), lock);
}

static int ff_check_lock(sqlite3_file *f, int *out)
{
	return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}

static int ff_file_control(sqlite3_file *f, int op, void *arg)
{
	return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}

static int ff_sector_size(sqlite3_file *f)
{
	return real_of(f)->pMethods->xSectorSize(real_of(f));
}

static int ff_device_chars(sqlite3_file *f)
{
	return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}

static int ff_shm_map(sqlite3_file *f, int pg, int pgsz, int extend,
		      void volatile **p)
{
	return real_of(f)->pMethods->xShmMap(real_of(f), pg, pgsz, extend, p);
}

static int ff_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}

static void ff_shm_barrier(sqlite3_file *f)
{
	real_of(f)->pMethods->xShmBarrier(real_of(f));
}

static int ff_shm_unmap(sqlite3_file *f, int delete_flag)
{
	return real_of(f)->pMethods->xShmUnmap(real_of(f), delete_flag);
}

static int ff_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **p)
{
	return real_of(f)->pMethods->xFetch(real_of(f), off, n, p);
}

static int ff_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return real_of(f)->pMethods->xUnfetch(real_of(f), off, p);
}

static const sqlite3_io_methods fault_io = {
	.iVersion = 3,
	.xClose = ff_close,
	.xRead = ff_read,
	.xWrite = ff_write,
	.xTruncate = ff_truncate,
	.xSync = ff_sync,
	.xFileSize = ff_file_size,
	.xLock = ff_lock,
	.xUnlock = ff_unlock,
	.xCheckReservedLock = ff_check_lock,
	.xFileControl = ff_file_control,
	.xSectorSize = ff_sector_size,
	.xDeviceCharacteristics = ff_device_chars,
	.xShmMap = ff_shm_map,
	.xShmLock = ff_shm_lock,
	.xShmBarrier = ff_shm_barrier,
	.xShmUnmap = ff_shm_unmap,
	.xFetch = ff_fetch,
	.xUnfetch = ff_unfetch,
};

static int fault_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f,
		      int flags, int *out_flags)
{
	struct fault_file *ff = (struct fault_file *) f;
	int rc;

	(void) vfs;
	ff->real = (sqlite3_file *) (ff + 1);
	rc = unix_vfs->xOpen(unix_vfs, name, ff->real, flags, out_flags);
	ff->base.pMethods = ff->real->pMethods ? &fault_io : NULL;
	return rc;
}

static int fault_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	(void) vfs;
	return unix_vfs->xDelete(unix_vfs, name, sync_dir);
}

static int fault_access(sqlite3_vfs *vfs, const char *name, int flags,
			int *out)
{
	(void) vfs;
	return unix_vfs->xAccess(unix_vfs, name, flags, out);
}

static int fault_full_path(sqlite3_vfs *vfs, const char *name, int n,
			   char *out)
{
	(void) vfs;
	return unix_vfs->xFullPathname(unix_vfs, name, n, out);
}

static int fault_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	(void) vfs;
	return unix_vfs->xRandomness(unix_vfs, n, out);
}

static int fault_sleep(sqlite3_vfs *vfs, int us)
{
	(void) vfs;
	return unix_vfs->xSleep(unix_vfs, us);
}

static int fault_current_time(sqlite3_vfs *vfs, double *out)
{
	(void) vfs;
	return unix_vfs->xCurrentTime(unix_vfs, out);
}

static int fault_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void) vfs;
	return unix_vfs->xGetLastError(unix_vfs, n, out);
}

static int fault_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	(void) vfs;
	return unix_vfs->xCurrentTimeInt64(unix_vfs, out);
}

static sqlite3_vfs fault_vfs = {
	.iVersion = 2,
	.mxPathname = 512,
	.zName = "lmrsec-test-fault",
	.xOpen = fault_open,
	.xDelete = fault_delete,
	.xAccess = fault_access,
	.xFullPathname = fault_full_path,
	.xRandomness = fault_randomness,
	.xSleep = fault_sleep,
	.xCurrentTime = fault_current_time,
	.xGetLastError = fault_last_error,
	.xCurrentTimeInt64 = fault_current_time64,
};

/* Makes the fault VFS the default, so the next spool_open uses it. */
static void fault_vfs_install(void)
{
	unix_vfs = sqlite3_vfs_find("unix");
	assert_non_null(unix_vfs);
	fault_vfs.szOsFile = (int) sizeof(struct fault_file) + unix_vfs->szOsFile;
	fault_vfs.mxPathname = unix_vfs->mxPathname;
	fault_write_rc = SQLITE_OK;
	fault_sync_rc = SQLITE_OK;
	assert_int_equal(sqlite3_vfs_register(&fault_vfs, 1), SQLITE_OK);
}

static void fault_vfs_remove(void)
{
	fault_write_rc = SQLITE_OK;
	fault_sync_rc = SQLITE_OK;
	sqlite3_vfs_unregister(&fault_vfs);
	sqlite3_vfs_register(unix_vfs, 1);
}

/* --- helpers --- */

static void sidecar(const struct fixture *f, const char *suffix, char *out,
		    size_t len)
{
	snprintf(out, len, "%s%s", f->path, suffix);
}

static mode_t file_mode(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

/* Whether the bytes of needle occur anywhere in the file (absent: no). */
static bool file_contains(const char *path, const uint8_t *needle, size_t len)
{
	uint8_t *data = NULL;
	struct stat st;
	bool found = false;
	size_t i;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;

	assert_int_equal(fstat(fd, &st), 0);
	if (st.st_size > 0) {
		data = malloc((size_t) st.st_size);
		assert_non_null(data);
		assert_int_equal(read(fd, data, (size_t) st.st_size), st.st_size);
	}

	close(fd);
	for (i = 0; data && i + len <= (size_t) st.st_size && !found; i++)
		found = memcmp(data + i, needle, len) == 0;

	free(data);
	return found;
}

static char *xstrdup(const char *s)
{
	char *d = s ? strdup(s) : NULL;

	assert_true(!s || d);
	return d;
}

/* An owned record; payload copied, fingerprint a pattern of fp_byte. */
static void record_init(struct spool_record *rec, const char *lmr_type,
			const char *key, int64_t received_us,
			const void *payload, size_t len, uint8_t fp_byte)
{
	memset(rec, 0, sizeof(*rec));
	rec->received_us = received_us;
	rec->lmr_type = xstrdup(lmr_type);
	rec->kmf_uri = xstrdup("sip:kmf@iwf.example.org");
	rec->mc_service_id = xstrdup("sip:alice@mc.example.org");
	rec->sender = xstrdup("sip:iwf@iwf.example.org");
	rec->dedupe_key = xstrdup(key);
	rec->payload_len = len;
	if (len > 0) {
		rec->payload = malloc(len);
		assert_non_null(rec->payload);
		memcpy(rec->payload, payload, len);
	}
	memset(rec->fingerprint, fp_byte, sizeof(rec->fingerprint));
}

/* Stores a small record and returns its id. */
static int64_t store_simple(struct spool *s, const char *key,
			    int64_t received_us)
{
	struct spool_record rec;
	int64_t id;

	record_init(&rec, "TETRA", key, received_us, "key", 3, 0x11);
	assert_int_equal(spool_store(s, &rec), 0);
	id = rec.id;
	spool_record_clear(&rec);
	return id;
}

static uint64_t count_messages(struct spool *s)
{
	uint64_t n;

	assert_int_equal(spool_totals(s, &n, NULL), 0);
	return n;
}

static void reopen(struct fixture *f)
{
	spool_close(f->spool);
	f->spool = NULL;
	assert_int_equal(spool_open(f->path, &f->spool, NULL), 0);
}

/* The 64 distinctive bytes the scrubbing tests look for. */
static void secret_marker(uint8_t out[64])
{
	static const char text[] =
		"LMRSEC-TEST-KEY-MATERIAL-7f3a9c2e-do-not-leave-on-disk-0123456";
	size_t i;

	memcpy(out, text, 63);
	out[63] = 0xA5;
	for (i = 32; i < 48; i++)
		out[i] ^= 0x5A;
}

/* --- fixture --- */

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/test-spool.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/spool.db", f->dir);
	*state = f;
	return 0;
}

static int setup_open(void **state)
{
	struct fixture *f;

	setup(state);
	f = *state;
	assert_int_equal(spool_open(f->path, &f->spool, NULL), 0);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char path[512];
	struct dirent *de;
	DIR *d;

	spool_close(f->spool);
	d = opendir(f->dir);
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", f->dir, de->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* --- opening --- */

static void test_global_init_installs_wiping_heap(void **state)
{
	(void) state;
	/* main() ran it before anything else touched SQLite. */
	assert_int_equal(spool_global_init(), 0);
}

static void test_open_creates_files_0600(void **state)
{
	struct fixture *f = *state;
	char wal[160], shm[160];
	mode_t old = umask(0);

	assert_int_equal(spool_open(f->path, &f->spool, NULL), 0);
	umask(old);
	assert_null(spool_warning(f->spool));
	store_simple(f->spool, "k1", 1);

	sidecar(f, "-wal", wal, sizeof(wal));
	sidecar(f, "-shm", shm, sizeof(shm));
	assert_int_equal(file_mode(f->path), 0600);
	assert_int_equal(file_mode(wal), 0600);
	assert_int_equal(file_mode(shm), 0600);
}

static void test_open_tightens_loose_mode_with_warning(void **state)
{
	struct fixture *f = *state;
	char wal[160];
	int fd;

	fd = open(f->path, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0644), 0);
	close(fd);
	sidecar(f, "-wal", wal, sizeof(wal));
	fd = open(wal, O_CREAT | O_WRONLY, 0666);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0666), 0);
	close(fd);

	assert_int_equal(spool_open(f->path, &f->spool, NULL), 0);
	assert_int_equal(file_mode(f->path), 0600);
	assert_int_equal(file_mode(wal), 0600);
	assert_non_null(spool_warning(f->spool));
	assert_non_null(strstr(spool_warning(f->spool), "0644"));
	assert_non_null(strstr(spool_warning(f->spool), "0666"));
}

static void test_open_refuses_symlink(void **state)
{
	struct fixture *f = *state;
	char target[160];
	char *msg = NULL;
	int fd;

	snprintf(target, sizeof(target), "%s/target.db", f->dir);
	fd = open(target, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(symlink(target, f->path), 0);

	assert_int_equal(spool_open(f->path, &f->spool, &msg), -ELOOP);
	assert_null(f->spool);
	assert_non_null(msg);
	assert_non_null(strstr(msg, f->path));
	free(msg);
}

static void test_open_refuses_symlinked_wal(void **state)
{
	struct fixture *f = *state;
	char target[160], wal[160];
	int fd;

	snprintf(target, sizeof(target), "%s/elsewhere", f->dir);
	fd = open(target, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	sidecar(f, "-wal", wal, sizeof(wal));
	assert_int_equal(symlink(target, wal), 0);

	assert_int_equal(spool_open(f->path, &f->spool, NULL), -EINVAL);
	assert_null(f->spool);
}

static void test_open_refuses_file_of_another_user(void **state)
{
	struct fixture *f = *state;
	char *msg = NULL;
	int fd;

	fd = open(f->path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	if (chown(f->path, geteuid() + 1, (gid_t) -1) < 0)
		skip();		/* not root: cannot give the file away */

	assert_int_equal(spool_open(f->path, &f->spool, &msg), -EPERM);
	assert_non_null(strstr(msg, "owned by"));
	free(msg);
}

static void test_open_refuses_foreign_database(void **state)
{
	struct fixture *f = *state;
	char *msg = NULL;
	sqlite3 *db;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	db_exec(db, "CREATE TABLE contacts (name TEXT)");
	sqlite3_close(db);
	chmod(f->path, 0600);

	assert_int_equal(spool_open(f->path, &f->spool, &msg), -EINVAL);
	assert_non_null(strstr(msg, "not an lmrsec spool"));
	free(msg);
}

static void test_open_refuses_newer_schema(void **state)
{
	struct fixture *f = *state;
	char *msg = NULL;

	assert_int_equal(spool_open(f->path, &f->spool, NULL), 0);
	spool_close(f->spool);
	f->spool = NULL;
	db_set(f->path, "PRAGMA user_version = 99");

	assert_int_equal(spool_open(f->path, &f->spool, &msg), -EPROTONOSUPPORT);
	assert_non_null(strstr(msg, "99"));
	free(msg);
}

static void test_open_refuses_negative_schema_version(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(spool_open(f->path, &f->spool, NULL), 0);
	spool_close(f->spool);
	f->spool = NULL;
	db_set(f->path, "PRAGMA user_version = -1");

	assert_int_equal(spool_open(f->path, &f->spool, NULL), -EPROTONOSUPPORT);
}

static void test_open_refuses_file_that_is_not_a_database(void **state)
{
	struct fixture *f = *state;
	char junk[8192];
	char *msg = NULL;
	int fd;

	memset(junk, 'J', sizeof(junk));
	fd = open(f->path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, junk, sizeof(junk)), sizeof(junk));
	close(fd);

	assert_int_equal(spool_open(f->path, &f->spool, &msg), -EIO);
	assert_non_null(strstr(msg, "not a database"));
	assert_non_null(strstr(msg, f->path));
	free(msg);
}

static void test_open_sets_schema_version(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(spool_open(f->path, &f->spool, NULL), 0);
	assert_int_equal(db_int(last_db, "PRAGMA user_version"),
			 SPOOL_SCHEMA_VERSION);
}

static void test_pragmas_in_force(void **state)
{
	struct fixture *f = *state;
	sqlite3_stmt *st;

	assert_int_equal(spool_open(f->path, &f->spool, NULL), 0);
	assert_int_equal(sqlite3_prepare_v2(last_db, "PRAGMA journal_mode", -1,
					    &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *) sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);

	assert_int_equal(db_int(last_db, "PRAGMA synchronous"), 2);
	assert_int_equal(db_int(last_db, "PRAGMA secure_delete"), 1);
	assert_int_equal(db_int(last_db, "PRAGMA foreign_keys"), 1);
	assert_int_equal(db_int(last_db, "PRAGMA temp_store"), 2);
}

/* --- storing and reading --- */

static void test_store_get_round_trip_binary_payload(void **state)
{
	struct fixture *f = *state;
	struct spool_record rec, out;
	uint8_t payload[256];
	size_t i;

	for (i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t) i;

	record_init(&rec, "P25", "call-1;1;tag", 1234567, payload,
		    sizeof(payload), 0xC3);
	rec.fingerprint[0] = 0x00;
	rec.fingerprint[31] = 0xFF;
	free(rec.sender);
	rec.sender = NULL;
	assert_int_equal(spool_store(f->spool, &rec), 0);
	assert_true(rec.id > 0);

	assert_int_equal(spool_get(f->spool, rec.id, &out), 0);
	assert_int_equal(out.id, rec.id);
	assert_int_equal(out.received_us, 1234567);
	assert_string_equal(out.lmr_type, "P25");
	assert_string_equal(out.kmf_uri, rec.kmf_uri);
	assert_string_equal(out.mc_service_id, rec.mc_service_id);
	assert_null(out.sender);
	assert_string_equal(out.dedupe_key, "call-1;1;tag");
	assert_int_equal(out.payload_len, sizeof(payload));
	assert_memory_equal(out.payload, payload, sizeof(payload));
	assert_memory_equal(out.fingerprint, rec.fingerprint, 32);

	spool_record_clear(&out);
	spool_record_clear(&rec);
}

static void test_store_rejects_invalid_record(void **state)
{
	struct fixture *f = *state;
	struct spool_record rec;

	record_init(&rec, "TETRA", "k", 1, "x", 1, 0);
	free(rec.lmr_type);
	rec.lmr_type = NULL;
	assert_int_equal(spool_store(f->spool, &rec), -EINVAL);
	spool_record_clear(&rec);

	record_init(&rec, "TETRA", "k", 1, "x", 1, 0);
	rec.payload_len = SPOOL_PAYLOAD_MAX + 1;	/* never read */
	assert_int_equal(spool_store(f->spool, &rec), -EMSGSIZE);
	rec.payload_len = 1;
	spool_record_clear(&rec);

	assert_int_equal(count_messages(f->spool), 0);
}

static void test_ids_increase_in_arrival_order(void **state)
{
	struct fixture *f = *state;
	int64_t prev = 0, id;
	char key[16];
	int i;

	for (i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		/* received_us deliberately decreasing: ids follow arrival */
		id = store_simple(f->spool, key, 1000 - i);
		assert_true(id > prev);
		prev = id;
	}
}

static void test_ids_not_reused_after_remove_and_reopen(void **state)
{
	struct fixture *f = *state;
	int64_t a, b, c;

	a = store_simple(f->spool, "a", 1);
	b = store_simple(f->spool, "b", 2);
	assert_int_equal(spool_remove(f->spool, b), 0);
	reopen(f);
	c = store_simple(f->spool, "c", 3);
	assert_true(c > b);
	assert_true(b > a);
}

struct visit_log {
	int64_t ids[16];
	int64_t received[16];
	size_t lens[16];
	bool had_payload[16];
	size_t n;
	int stop_after;		/* 0: never */
};

static int log_visit(const struct spool_record *rec, void *user)
{
	struct visit_log *log = user;

	assert_true(log->n < 16);
	log->ids[log->n] = rec->id;
	log->received[log->n] = rec->received_us;
	log->lens[log->n] = rec->payload_len;
	log->had_payload[log->n] = rec->payload != NULL;
	log->n++;
	if (log->stop_after && log->n == (size_t) log->stop_after)
		return -ECANCELED;
	return 0;
}

static void test_foreach_visits_in_id_order_with_payload(void **state)
{
	struct fixture *f = *state;
	struct visit_log log = { 0 };
	int64_t ids[4];
	size_t i;

	ids[0] = store_simple(f->spool, "a", 400);
	ids[1] = store_simple(f->spool, "b", 100);
	ids[2] = store_simple(f->spool, "c", 300);
	ids[3] = store_simple(f->spool, "d", 200);

	assert_int_equal(spool_foreach(f->spool, log_visit, &log), 0);
	assert_int_equal(log.n, 4);
	for (i = 0; i < 4; i++) {
		assert_int_equal(log.ids[i], ids[i]);
		assert_true(log.had_payload[i]);
		assert_int_equal(log.lens[i], 3);
	}
}

static void test_foreach_stops_when_visitor_fails(void **state)
{
	struct fixture *f = *state;
	struct visit_log log = { .stop_after = 2 };

	store_simple(f->spool, "a", 1);
	store_simple(f->spool, "b", 2);
	store_simple(f->spool, "c", 3);

	assert_int_equal(spool_foreach(f->spool, log_visit, &log), -ECANCELED);
	assert_int_equal(log.n, 2);
	/* the statement was reset: a new walk sees everything */
	log = (struct visit_log) { 0 };
	assert_int_equal(spool_foreach(f->spool, log_visit, &log), 0);
	assert_int_equal(log.n, 3);
}

static void test_list_is_metadata_only_and_pages(void **state)
{
	struct fixture *f = *state;
	struct visit_log log = { 0 };
	int64_t ids[5];
	int i;

	for (i = 0; i < 5; i++) {
		char key[8];

		snprintf(key, sizeof(key), "k%d", i);
		ids[i] = store_simple(f->spool, key, i);
	}

	assert_int_equal(spool_list(f->spool, 0, 2, log_visit, &log), 0);
	assert_int_equal(log.n, 2);
	assert_int_equal(log.ids[0], ids[0]);
	assert_int_equal(log.ids[1], ids[1]);
	assert_false(log.had_payload[0]);
	assert_int_equal(log.lens[0], 3);

	log = (struct visit_log) { 0 };
	assert_int_equal(spool_list(f->spool, ids[1], 0, log_visit, &log), 0);
	assert_int_equal(log.n, 3);
	assert_int_equal(log.ids[0], ids[2]);
	assert_int_equal(log.ids[2], ids[4]);
}

static void test_get_missing_is_enoent(void **state)
{
	struct fixture *f = *state;
	struct spool_record out;

	assert_int_equal(spool_get(f->spool, 42, &out), -ENOENT);
	assert_null(out.payload);
}

/* --- dedupe --- */

static void test_dedupe_returns_earlier_id(void **state)
{
	struct fixture *f = *state;
	struct spool_record rec;
	int64_t first;

	first = store_simple(f->spool, "call;7;tag", 10);
	record_init(&rec, "TETRA", "call;7;tag", 20, "other", 5, 0x22);
	assert_int_equal(spool_store(f->spool, &rec), -EEXIST);
	assert_int_equal(rec.id, first);
	assert_int_equal(count_messages(f->spool), 1);
	spool_record_clear(&rec);
}

static void test_dedupe_survives_reopen(void **state)
{
	struct fixture *f = *state;
	struct spool_record rec;
	int64_t first;

	first = store_simple(f->spool, "call;7;tag", 10);
	reopen(f);
	record_init(&rec, "TETRA", "call;7;tag", 20, "key", 3, 0x11);
	assert_int_equal(spool_store(f->spool, &rec), -EEXIST);
	assert_int_equal(rec.id, first);
	spool_record_clear(&rec);
}

static void test_dedupe_survives_remove(void **state)
{
	struct fixture *f = *state;
	struct spool_record rec;
	int64_t first;

	first = store_simple(f->spool, "call;7;tag", 10);
	assert_int_equal(spool_remove(f->spool, first), 0);
	record_init(&rec, "TETRA", "call;7;tag", 20, "key", 3, 0x11);
	assert_int_equal(spool_store(f->spool, &rec), -EEXIST);
	assert_int_equal(rec.id, first);
	assert_int_equal(count_messages(f->spool), 0);
	spool_record_clear(&rec);
}

static void test_null_dedupe_key_is_never_a_duplicate(void **state)
{
	struct fixture *f = *state;

	store_simple(f->spool, NULL, 1);
	store_simple(f->spool, NULL, 1);
	assert_int_equal(count_messages(f->spool), 2);
}

/* --- totals, remove --- */

static void test_totals_count_messages_and_payload_bytes(void **state)
{
	struct fixture *f = *state;
	struct spool_record rec;
	uint64_t n = 99, bytes = 99;
	uint8_t payload[1000] = { 0 };
	int64_t id;

	assert_int_equal(spool_totals(f->spool, &n, &bytes), 0);
	assert_int_equal(n, 0);
	assert_int_equal(bytes, 0);

	record_init(&rec, "DMR", "a", 1, payload, sizeof(payload), 1);
	assert_int_equal(spool_store(f->spool, &rec), 0);
	id = rec.id;
	spool_record_clear(&rec);
	store_simple(f->spool, "b", 2);

	assert_int_equal(spool_totals(f->spool, &n, &bytes), 0);
	assert_int_equal(n, 2);
	assert_int_equal(bytes, 1003);

	assert_int_equal(spool_remove(f->spool, id), 0);
	assert_int_equal(spool_totals(f->spool, &n, &bytes), 0);
	assert_int_equal(n, 1);
	assert_int_equal(bytes, 3);
}

static void test_remove_deletes_the_message(void **state)
{
	struct fixture *f = *state;
	struct spool_record out;
	int64_t a, b;

	a = store_simple(f->spool, "a", 1);
	b = store_simple(f->spool, "b", 2);
	assert_int_equal(spool_remove(f->spool, a), 0);
	assert_int_equal(spool_get(f->spool, a, &out), -ENOENT);
	assert_int_equal(spool_get(f->spool, b, &out), 0);
	spool_record_clear(&out);
}

static void test_remove_missing_is_enoent(void **state)
{
	struct fixture *f = *state;
	int64_t a;

	assert_int_equal(spool_remove(f->spool, 1), -ENOENT);
	a = store_simple(f->spool, "a", 1);
	assert_int_equal(spool_remove(f->spool, a), 0);
	assert_int_equal(spool_remove(f->spool, a), -ENOENT);
}

/* --- expiry and seen pruning --- */

struct expire_log {
	struct spool *spool;
	struct visit_log log;
	bool gone_when_reported;
};

static int log_expired(const struct spool_record *rec, void *user)
{
	struct expire_log *e = user;
	struct spool_record out;

	e->gone_when_reported &= spool_get(e->spool, rec->id, &out) == -ENOENT;
	return log_visit(rec, &e->log);
}

static void test_expire_reports_and_deletes_only_older(void **state)
{
	struct fixture *f = *state;
	struct expire_log e = { .spool = f->spool, .gone_when_reported = true };
	struct visit_log left = { 0 };
	int64_t ids[4];

	ids[0] = store_simple(f->spool, "a", 100);
	ids[1] = store_simple(f->spool, "b", 300);
	ids[2] = store_simple(f->spool, "c", 200);
	ids[3] = store_simple(f->spool, "d", 250);

	assert_int_equal(spool_expire(f->spool, 250, log_expired, &e), 2);
	assert_int_equal(e.log.n, 2);
	assert_int_equal(e.log.ids[0], ids[0]);
	assert_int_equal(e.log.ids[1], ids[2]);
	assert_int_equal(e.log.received[1], 200);
	assert_false(e.log.had_payload[0]);
	assert_int_equal(e.log.lens[0], 3);
	assert_true(e.gone_when_reported);

	assert_int_equal(spool_foreach(f->spool, log_visit, &left), 0);
	assert_int_equal(left.n, 2);
	assert_int_equal(left.ids[0], ids[1]);
	assert_int_equal(left.ids[1], ids[3]);

	assert_int_equal(spool_expire(f->spool, 250, NULL, NULL), 0);
}

static void test_prune_seen_forgets_only_old_keys_of_gone_messages(void **state)
{
	struct fixture *f = *state;
	struct spool_record rec;
	int64_t old_gone, new_gone;

	old_gone = store_simple(f->spool, "old-gone", 100);
	store_simple(f->spool, "old-kept", 100);
	new_gone = store_simple(f->spool, "new-gone", 500);
	assert_int_equal(spool_remove(f->spool, old_gone), 0);
	assert_int_equal(spool_remove(f->spool, new_gone), 0);

	assert_int_equal(spool_prune_seen(f->spool, 300), 1);

	record_init(&rec, "TETRA", "old-gone", 600, "key", 3, 0x11);
	assert_int_equal(spool_store(f->spool, &rec), 0);
	spool_record_clear(&rec);
	record_init(&rec, "TETRA", "old-kept", 600, "key", 3, 0x11);
	assert_int_equal(spool_store(f->spool, &rec), -EEXIST);
	spool_record_clear(&rec);
	record_init(&rec, "TETRA", "new-gone", 600, "key", 3, 0x11);
	assert_int_equal(spool_store(f->spool, &rec), -EEXIST);
	assert_int_equal(rec.id, new_gone);
	spool_record_clear(&rec);
}

/* --- group commit --- */

static void test_batch_with_duplicate_inside(void **state)
{
	struct fixture *f = *state;
	struct spool_record r[4], *recs[4];
	int results[4];
	int64_t earlier;
	size_t i;

	earlier = store_simple(f->spool, "stored-before", 1);
	record_init(&r[0], "TETRA", "x", 10, "k0", 2, 0);
	record_init(&r[1], "TETRA", "stored-before", 11, "k1", 2, 0);
	record_init(&r[2], "TETRA", "y", 12, "k2", 2, 0);
	record_init(&r[3], "TETRA", "x", 13, "k3", 2, 0);
	for (i = 0; i < 4; i++)
		recs[i] = &r[i];

	assert_int_equal(spool_store_batch(f->spool, recs, 4, results), 0);
	assert_int_equal(results[0], 0);
	assert_int_equal(results[1], -EEXIST);
	assert_int_equal(r[1].id, earlier);
	assert_int_equal(results[2], 0);
	assert_int_equal(results[3], -EEXIST);
	assert_int_equal(r[3].id, r[0].id);
	assert_true(r[2].id > r[0].id);
	assert_int_equal(count_messages(f->spool), 3);

	for (i = 0; i < 4; i++)
		spool_record_clear(&r[i]);
}

static void test_batch_of_nothing_is_fine(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(spool_store_batch(f->spool, NULL, 0, NULL), 0);
	assert_int_equal(spool_remove_batch(f->spool, NULL, 0), 0);
}

static void test_record_check_names_what_a_batch_refuses(void **state)
{
	struct spool_record rec;

	(void) state;
	record_init(&rec, "TETRA", "k", 1, "key", 3, 0x11);
	assert_int_equal(spool_record_check(&rec), 0);
	rec.payload_len = SPOOL_PAYLOAD_MAX + 1;
	assert_int_equal(spool_record_check(&rec), -EMSGSIZE);
	rec.payload_len = 3;
	free(rec.kmf_uri);
	rec.kmf_uri = NULL;
	assert_int_equal(spool_record_check(&rec), -EINVAL);
	spool_record_clear(&rec);
}

/* ACK deletes: several in one transaction, an absent id skipped. */
static void test_remove_batch_counts_and_skips_absent(void **state)
{
	struct fixture *f = *state;
	struct spool_record rec;
	int64_t ids[4];

	ids[0] = store_simple(f->spool, "a", 1);
	ids[1] = store_simple(f->spool, "b", 2);
	ids[2] = store_simple(f->spool, "c", 3);
	ids[3] = ids[2] + 100;
	assert_int_equal(spool_remove_batch(f->spool, (int64_t[]) { ids[0], ids[3], ids[2] },
					    3), 2);
	assert_int_equal(count_messages(f->spool), 1);
	assert_int_equal(spool_remove_batch(f->spool, &ids[1], 1), 1);
	assert_int_equal(count_messages(f->spool), 0);
	/* the dedupe keys outlive the messages, as after spool_remove */
	record_init(&rec, "TETRA", "a", 4, "key", 3, 0x11);
	assert_int_equal(spool_store(f->spool, &rec), -EEXIST);
	assert_int_equal(rec.id, ids[0]);
	spool_record_clear(&rec);
}

/* --- persistence --- */

static void test_messages_survive_close_and_reopen(void **state)
{
	struct fixture *f = *state;
	struct spool_record out;
	struct visit_log log = { 0 };
	int64_t a, b;

	a = store_simple(f->spool, "a", 1);
	b = store_simple(f->spool, "b", 2);
	reopen(f);

	assert_int_equal(spool_foreach(f->spool, log_visit, &log), 0);
	assert_int_equal(log.n, 2);
	assert_int_equal(log.ids[0], a);
	assert_int_equal(log.ids[1], b);
	assert_int_equal(spool_get(f->spool, b, &out), 0);
	assert_memory_equal(out.payload, "key", 3);
	spool_record_clear(&out);
}

/* --- removed payload bytes leave the files --- */

static void test_removed_payload_not_in_db_or_wal(void **state)
{
	struct fixture *f = *state;
	struct spool_record rec;
	uint8_t marker[64];
	char wal[160];

	secret_marker(marker);
	sidecar(f, "-wal", wal, sizeof(wal));
	store_simple(f->spool, "before", 1);
	record_init(&rec, "TETRA", "secret", 2, marker, sizeof(marker), 0x33);
	assert_int_equal(spool_store(f->spool, &rec), 0);
	store_simple(f->spool, "after", 3);
	/* the scan can see it: committed, so in the WAL */
	assert_true(file_contains(wal, marker, sizeof(marker)) ||
		    file_contains(f->path, marker, sizeof(marker)));

	assert_int_equal(spool_remove(f->spool, rec.id), 0);
	assert_int_equal(spool_checkpoint(f->spool), 0);

	assert_false(file_contains(f->path, marker, sizeof(marker)));
	assert_false(file_contains(wal, marker, sizeof(marker)));
	assert_int_equal(count_messages(f->spool), 2);
	spool_record_clear(&rec);
}

/* The same through the ACK path's non-durable batch delete. */
static void test_batch_removed_payload_not_in_db_or_wal(void **state)
{
	struct fixture *f = *state;
	struct spool_record rec;
	uint8_t marker[64];
	char wal[160];

	secret_marker(marker);
	sidecar(f, "-wal", wal, sizeof(wal));
	record_init(&rec, "TETRA", "secret", 2, marker, sizeof(marker), 0x33);
	assert_int_equal(spool_store(f->spool, &rec), 0);
	store_simple(f->spool, "after", 3);
	assert_true(file_contains(wal, marker, sizeof(marker)) ||
		    file_contains(f->path, marker, sizeof(marker)));

	assert_int_equal(spool_remove_batch(f->spool, &rec.id, 1), 1);
	assert_int_equal(spool_checkpoint(f->spool), 0);

	assert_false(file_contains(f->path, marker, sizeof(marker)));
	assert_false(file_contains(wal, marker, sizeof(marker)));
	assert_int_equal(count_messages(f->spool), 1);
	spool_record_clear(&rec);
}

/* A payload on overflow pages, already checkpointed into the db file. */
static void test_removed_large_payload_not_in_db_or_wal(void **state)
{
	struct fixture *f = *state;
	struct spool_record rec;
	uint8_t *payload;
	uint8_t marker[64];
	char wal[160];
	size_t i;

	secret_marker(marker);
	sidecar(f, "-wal", wal, sizeof(wal));
	payload = malloc(BIG_PAYLOAD_LEN);
	assert_non_null(payload);
	for (i = 0; i < BIG_PAYLOAD_LEN; i++)
		payload[i] = marker[i % sizeof(marker)];

	record_init(&rec, "TETRA", "secret", 2, payload, BIG_PAYLOAD_LEN, 0x33);
	assert_int_equal(spool_store(f->spool, &rec), 0);
	store_simple(f->spool, "after", 3);
	assert_int_equal(spool_checkpoint(f->spool), 0);
	assert_true(file_contains(f->path, marker, sizeof(marker)));

	assert_int_equal(spool_remove(f->spool, rec.id), 0);
	assert_int_equal(spool_checkpoint(f->spool), 0);

	assert_false(file_contains(f->path, marker, sizeof(marker)));
	assert_false(file_contains(wal, marker, sizeof(marker)));
	spool_record_clear(&rec);
	free(payload);
}

/* --- failures: nothing is half-stored, never a false success --- */

static void test_store_on_read_only_database_fails(void **state)
{
	struct fixture *f = *state;
	struct spool_record rec;

	assert_int_equal(spool_open(f->path, &f->spool, NULL), 0);
	db_exec(last_db, "PRAGMA query_only = ON");

	record_init(&rec, "TETRA", "k", 1, "key", 3, 0x11);
	assert_int_equal(spool_store(f->spool, &rec), -EIO);
	assert_int_equal(rec.id, 0);
	assert_true(strlen(spool_errmsg(f->spool)) > 0);

	db_exec(last_db, "PRAGMA query_only = OFF");
	assert_int_equal(count_messages(f->spool), 0);
	assert_int_equal(spool_store(f->spool, &rec), 0);	/* not -EEXIST */
	spool_record_clear(&rec);
}

static void test_store_while_another_writer_holds_lock_fails(void **state)
{
	struct fixture *f = *state;
	struct spool_record rec;
	sqlite3 *other;

	assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
	db_exec(other, "BEGIN IMMEDIATE");

	record_init(&rec, "TETRA", "k", 1, "key", 3, 0x11);
	assert_int_equal(spool_store(f->spool, &rec), -EIO);
	assert_non_null(strstr(spool_errmsg(f->spool), "locked"));

	db_exec(other, "ROLLBACK");
	sqlite3_close(other);
	assert_int_equal(spool_store(f->spool, &rec), 0);
	spool_record_clear(&rec);
}

static void test_store_fsync_failure_is_eio_and_stores_nothing(void **state)
{
	struct fixture *f = *state;
	struct spool_record rec;

	fault_vfs_install();
	assert_int_equal(spool_open(f->path, &f->spool, NULL), 0);
	store_simple(f->spool, "first", 1);

	fault_sync_rc = SQLITE_IOERR_FSYNC;
	record_init(&rec, "TETRA", "k", 2, "key", 3, 0x11);
	assert_int_equal(spool_store(f->spool, &rec), -EIO);
	assert_int_equal(rec.id, 0);
	fault_sync_rc = SQLITE_OK;

	assert_int_equal(count_messages(f->spool), 1);
	assert_int_equal(spool_store(f->spool, &rec), 0);	/* not -EEXIST */
	assert_int_equal(count_messages(f->spool), 2);
	spool_record_clear(&rec);

	spool_close(f->spool);
	f->spool = NULL;
	fault_vfs_remove();
}

/* The deletions are not fsync'd (a failing fsync does not fail them), and
 * the next store is durable again: it fails on the same fsync. */
static void test_remove_batch_skips_fsync_stores_keep_it(void **state)
{
	struct fixture *f = *state;
	struct spool_record rec;
	int64_t a, b;

	fault_vfs_install();
	assert_int_equal(spool_open(f->path, &f->spool, NULL), 0);
	a = store_simple(f->spool, "a", 1);
	b = store_simple(f->spool, "b", 2);

	fault_sync_rc = SQLITE_IOERR_FSYNC;
	assert_int_equal(spool_remove_batch(f->spool, (int64_t[]) { a, b }, 2), 2);
	assert_int_equal(db_int(last_db, "PRAGMA synchronous"), 2);	/* FULL */
	record_init(&rec, "TETRA", "k", 3, "key", 3, 0x11);
	assert_int_equal(spool_store(f->spool, &rec), -EIO);
	fault_sync_rc = SQLITE_OK;

	assert_int_equal(count_messages(f->spool), 0);
	assert_int_equal(spool_store(f->spool, &rec), 0);
	spool_record_clear(&rec);
	spool_close(f->spool);
	f->spool = NULL;
	fault_vfs_remove();
}

static void test_store_write_disk_full_is_enospc(void **state)
{
	struct fixture *f = *state;
	struct spool_record rec;

	fault_vfs_install();
	assert_int_equal(spool_open(f->path, &f->spool, NULL), 0);

	fault_write_rc = SQLITE_FULL;
	record_init(&rec, "TETRA", "k", 2, "key", 3, 0x11);
	assert_int_equal(spool_store(f->spool, &rec), -ENOSPC);
	fault_write_rc = SQLITE_OK;

	assert_int_equal(count_messages(f->spool), 0);
	assert_int_equal(spool_store(f->spool, &rec), 0);
	spool_record_clear(&rec);

	spool_close(f->spool);
	f->spool = NULL;
	fault_vfs_remove();
}

/* Caps the spool's database at its current size. */
static void cap_database(void)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
		 (long long) db_int(last_db, "PRAGMA page_count"));
	db_exec(last_db, sql);
}

static void test_store_database_full_is_enospc_and_stores_nothing(void **state)
{
	struct fixture *f = *state;
	struct spool_record rec;
	uint8_t *big = calloc(1, BIG_PAYLOAD_LEN);
	uint64_t n, bytes;

	assert_non_null(big);
	assert_int_equal(spool_open(f->path, &f->spool, NULL), 0);
	store_simple(f->spool, "small", 1);
	cap_database();

	record_init(&rec, "TETRA", "big", 2, big, BIG_PAYLOAD_LEN, 0x11);
	assert_int_equal(spool_store(f->spool, &rec), -ENOSPC);
	assert_int_equal(rec.id, 0);
	assert_non_null(strstr(spool_errmsg(f->spool), "full"));
	assert_int_equal(spool_totals(f->spool, &n, &bytes), 0);
	assert_int_equal(n, 1);
	assert_int_equal(bytes, 3);

	db_exec(last_db, "PRAGMA max_page_count = 1073741823");
	assert_int_equal(spool_store(f->spool, &rec), 0);	/* key not kept */
	spool_record_clear(&rec);
	free(big);
}

static void test_batch_failure_stores_nothing(void **state)
{
	struct fixture *f = *state;
	struct spool_record r[2], *recs[2] = { &r[0], &r[1] };
	uint8_t *big = calloc(1, BIG_PAYLOAD_LEN);
	int results[2] = { 7, 7 };

	assert_non_null(big);
	assert_int_equal(spool_open(f->path, &f->spool, NULL), 0);
	store_simple(f->spool, "first", 1);
	cap_database();

	record_init(&r[0], "TETRA", "fits", 2, "key", 3, 0x11);
	record_init(&r[1], "TETRA", "too-big", 3, big, BIG_PAYLOAD_LEN, 0x11);
	assert_int_equal(spool_store_batch(f->spool, recs, 2, results), -ENOSPC);
	assert_int_equal(r[0].id, 0);
	assert_int_equal(r[1].id, 0);
	assert_int_equal(count_messages(f->spool), 1);

	db_exec(last_db, "PRAGMA max_page_count = 1073741823");
	assert_int_equal(spool_store_batch(f->spool, recs, 2, results), 0);
	assert_int_equal(results[0], 0);
	assert_int_equal(results[1], 0);
	spool_record_clear(&r[0]);
	spool_record_clear(&r[1]);
	free(big);
}

static void test_record_clear_frees_and_zeroes(void **state)
{
	struct spool_record rec, zero;

	(void) state;
	memset(&zero, 0, sizeof(zero));
	record_init(&rec, "TETRA", "k", 1, "key", 3, 0x11);
	spool_record_clear(&rec);
	assert_memory_equal(&rec, &zero, sizeof(rec));
	spool_record_clear(&rec);	/* twice is harmless */
	spool_record_clear(NULL);
}

#define T(fn)		cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define T_OPEN(fn)	cmocka_unit_test_setup_teardown(fn, setup_open, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_global_init_installs_wiping_heap),
		T(test_open_creates_files_0600),
		T(test_open_tightens_loose_mode_with_warning),
		T(test_open_refuses_symlink),
		T(test_open_refuses_symlinked_wal),
		T(test_open_refuses_file_of_another_user),
		T(test_open_refuses_foreign_database),
		T(test_open_refuses_newer_schema),
		T(test_open_refuses_negative_schema_version),
		T(test_open_refuses_file_that_is_not_a_database),
		T(test_open_sets_schema_version),
		T(test_pragmas_in_force),
		T_OPEN(test_store_get_round_trip_binary_payload),
		T_OPEN(test_store_rejects_invalid_record),
		T_OPEN(test_ids_increase_in_arrival_order),
		T_OPEN(test_ids_not_reused_after_remove_and_reopen),
		T_OPEN(test_foreach_visits_in_id_order_with_payload),
		T_OPEN(test_foreach_stops_when_visitor_fails),
		T_OPEN(test_list_is_metadata_only_and_pages),
		T_OPEN(test_get_missing_is_enoent),
		T_OPEN(test_dedupe_returns_earlier_id),
		T_OPEN(test_dedupe_survives_reopen),
		T_OPEN(test_dedupe_survives_remove),
		T_OPEN(test_null_dedupe_key_is_never_a_duplicate),
		T_OPEN(test_totals_count_messages_and_payload_bytes),
		T_OPEN(test_remove_deletes_the_message),
		T_OPEN(test_remove_missing_is_enoent),
		T_OPEN(test_expire_reports_and_deletes_only_older),
		T_OPEN(test_prune_seen_forgets_only_old_keys_of_gone_messages),
		T_OPEN(test_batch_with_duplicate_inside),
		T_OPEN(test_batch_of_nothing_is_fine),
		cmocka_unit_test(test_record_check_names_what_a_batch_refuses),
		T_OPEN(test_remove_batch_counts_and_skips_absent),
		T_OPEN(test_messages_survive_close_and_reopen),
		T_OPEN(test_removed_payload_not_in_db_or_wal),
		T_OPEN(test_batch_removed_payload_not_in_db_or_wal),
		T_OPEN(test_removed_large_payload_not_in_db_or_wal),
		T(test_store_on_read_only_database_fails),
		T_OPEN(test_store_while_another_writer_holds_lock_fails),
		T(test_store_fsync_failure_is_eio_and_stores_nothing),
		T(test_remove_batch_skips_fsync_stores_keep_it),
		T(test_store_write_disk_full_is_enospc),
		T(test_store_database_full_is_enospc_and_stores_nothing),
		T(test_batch_failure_stores_nothing),
		cmocka_unit_test(test_record_clear_frees_and_zeroes),
	};

	/* Before anything else touches SQLite: installs the wiping heap. */
	if (spool_global_init() < 0)
		return 1;

	sqlite3_auto_extension((void (*)(void)) capture_db);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
