/*
 * spool — the durable store of key messages, on SQLite.  See spool.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* asprintf */
#endif

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "spool.h"

#define SPOOL_FILE_MODE		0600
#define SPOOL_BUSY_TIMEOUT_MS	200
#define SPOOL_APPLICATION_ID	0x4c4d5253	/* "LMRS", marks the file as ours */
#define SPOOL_MSG_LEN		512
/* Not prepared statements: SQLite applies this PRAGMA when it compiles it,
 * so a prepared one would not switch anything when stepped again. */
#define SPOOL_SYNC_NORMAL	"PRAGMA synchronous = NORMAL"
#define SPOOL_SYNC_FULL		"PRAGMA synchronous = FULL"

enum spool_stmt {
	SPOOL_STMT_BEGIN,
	SPOOL_STMT_COMMIT,
	SPOOL_STMT_ROLLBACK,
	SPOOL_STMT_SEEN_LOOKUP,
	SPOOL_STMT_SEEN_INSERT,
	SPOOL_STMT_SEEN_PRUNE,
	SPOOL_STMT_MESSAGE_INSERT,
	SPOOL_STMT_MESSAGE_DELETE,
	SPOOL_STMT_MESSAGE_GET,
	SPOOL_STMT_MESSAGE_ALL,
	SPOOL_STMT_MESSAGE_LIST,
	SPOOL_STMT_MESSAGE_EXPIRED,
	SPOOL_STMT_MESSAGE_EXPIRE,
	SPOOL_STMT_TOTALS,
	SPOOL_STMT_COUNT,
};

/* Column order every message SELECT shares; see spool_row_view(). */
#define SPOOL_META_COLUMNS \
	"id, received_us, lmr_type, kmf_uri, mc_service_id, sender, " \
	"dedupe_key, payload_len, fingerprint"
enum spool_column {
	SPOOL_COL_ID,
	SPOOL_COL_RECEIVED,
	SPOOL_COL_LMR_TYPE,
	SPOOL_COL_KMF_URI,
	SPOOL_COL_MC_SERVICE_ID,
	SPOOL_COL_SENDER,
	SPOOL_COL_DEDUPE_KEY,
	SPOOL_COL_PAYLOAD_LEN,
	SPOOL_COL_FINGERPRINT,
	SPOOL_COL_PAYLOAD,	/* only in the statements that read payloads */
};

static const char *const spool_sql[SPOOL_STMT_COUNT] = {
	[SPOOL_STMT_BEGIN] = "BEGIN IMMEDIATE",
	[SPOOL_STMT_COMMIT] = "COMMIT",
	[SPOOL_STMT_ROLLBACK] = "ROLLBACK",
	[SPOOL_STMT_SEEN_LOOKUP] =
		"SELECT message_id FROM seen WHERE dedupe_key = ?1",
	[SPOOL_STMT_SEEN_INSERT] =
		"INSERT INTO seen (dedupe_key, message_id, accepted_us) "
		"VALUES (?1, ?2, ?3)",
	[SPOOL_STMT_SEEN_PRUNE] =
		"DELETE FROM seen WHERE accepted_us < ?1 AND NOT EXISTS "
		"(SELECT 1 FROM message WHERE message.id = seen.message_id)",
	[SPOOL_STMT_MESSAGE_INSERT] =
		"INSERT INTO message (received_us, lmr_type, kmf_uri, "
		"mc_service_id, sender, dedupe_key, payload_len, fingerprint, "
		"payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[SPOOL_STMT_MESSAGE_DELETE] = "DELETE FROM message WHERE id = ?1",
	[SPOOL_STMT_MESSAGE_GET] =
		"SELECT " SPOOL_META_COLUMNS ", payload FROM message "
		"WHERE id = ?1",
	[SPOOL_STMT_MESSAGE_ALL] =
		"SELECT " SPOOL_META_COLUMNS ", payload FROM message "
		"ORDER BY id",
	[SPOOL_STMT_MESSAGE_LIST] =
		"SELECT " SPOOL_META_COLUMNS " FROM message WHERE id > ?1 "
		"ORDER BY id LIMIT ?2",
	[SPOOL_STMT_MESSAGE_EXPIRED] =
		"SELECT " SPOOL_META_COLUMNS " FROM message "
		"WHERE received_us < ?1 ORDER BY id",
	[SPOOL_STMT_MESSAGE_EXPIRE] =
		"DELETE FROM message WHERE received_us < ?1",
	[SPOOL_STMT_TOTALS] =
		"SELECT count(*), coalesce(sum(payload_len), 0) FROM message",
};

/*
 * Schema steps: spool_migrations[v] takes user_version v to v + 1.
 * `seen` has no foreign key to `message` on purpose: it must outlive it.
 */
static const char *const spool_migrations[SPOOL_SCHEMA_VERSION] = {
	"CREATE TABLE message ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  received_us INTEGER NOT NULL,"
	"  lmr_type TEXT NOT NULL,"
	"  kmf_uri TEXT NOT NULL,"
	"  mc_service_id TEXT,"
	"  sender TEXT,"
	"  payload BLOB NOT NULL,"
	"  payload_len INTEGER NOT NULL CHECK (payload_len = length(payload)),"
	"  fingerprint BLOB NOT NULL CHECK (length(fingerprint) = 32),"
	"  dedupe_key TEXT);"
	"CREATE INDEX message_received ON message (received_us);"
	"CREATE TABLE seen ("
	"  dedupe_key TEXT PRIMARY KEY,"
	"  message_id INTEGER NOT NULL,"
	"  accepted_us INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX seen_accepted ON seen (accepted_us);",
};

struct spool {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *stmt[SPOOL_STMT_COUNT];
	char errmsg[SPOOL_MSG_LEN];
	char warning[SPOOL_MSG_LEN];
	bool sync_normal;	/* FULL not restored after spool_remove_batch */
};

/* --- a heap for SQLite that wipes what it frees --- */

static void *wipe_malloc(int n)
{
	return malloc(n);
}

static void wipe_free(void *p)
{
	if (!p)
		return;

	explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

/* Never realloc() in place: the old block may hold key material. */
static void *wipe_realloc(void *p, int n)
{
	size_t old;
	void *q;

	if (!p)
		return malloc(n);

	q = malloc(n);
	if (!q)
		return NULL;

	old = malloc_usable_size(p);
	memcpy(q, p, old < (size_t) n ? old : (size_t) n);
	wipe_free(p);
	return q;
}

static int wipe_size(void *p)
{
	return p ? (int) malloc_usable_size(p) : 0;
}

static int wipe_roundup(int n)
{
	return (n + 7) & ~7;
}

static int wipe_init(void *app)
{
	(void) app;
	return SQLITE_OK;
}

static void wipe_shutdown(void *app)
{
	(void) app;
}

static const sqlite3_mem_methods wipe_methods = {
	.xMalloc = wipe_malloc,
	.xFree = wipe_free,
	.xRealloc = wipe_realloc,
	.xSize = wipe_size,
	.xRoundup = wipe_roundup,
	.xInit = wipe_init,
	.xShutdown = wipe_shutdown,
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_result;

static void spool_global_install(void)
{
	/* SQLITE_MISUSE: SQLite is already initialised with its own heap. */
	if (sqlite3_config(SQLITE_CONFIG_MALLOC, &wipe_methods) != SQLITE_OK) {
		global_result = -EALREADY;
		return;
	}

	global_result = sqlite3_initialize() == SQLITE_OK ? 0 : -ENOMEM;
}

int spool_global_init(void)
{
	pthread_once(&global_once, spool_global_install);
	return global_result;
}

/* --- errors --- */

static void spool_set_msg(struct spool *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void spool_set_msg(struct spool *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
	va_end(ap);
}

/* Records SQLite's message for rc and maps rc to the errno of spool.h. */
static int spool_fail(struct spool *s, int rc)
{
	spool_set_msg(s, "%s (sqlite %d)", sqlite3_errmsg(s->db), rc);

	if ((rc & 0xff) == SQLITE_FULL)
		return -ENOSPC;

	if ((rc & 0xff) == SQLITE_NOMEM)
		return -ENOMEM;

	return -EIO;
}

/* Steps a statement that returns no row, then resets it. */
static int spool_run(struct spool *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	int r = 0;

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = spool_fail(s, rc);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

static void spool_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* --- transactions --- */

static int spool_begin(struct spool *s)
{
	return spool_run(s, s->stmt[SPOOL_STMT_BEGIN]);
}

/* Safe to call whether or not a transaction is still open: SQLite rolls
 * some failures back by itself. */
static void spool_rollback(struct spool *s)
{
	if (sqlite3_get_autocommit(s->db))
		return;

	sqlite3_step(s->stmt[SPOOL_STMT_ROLLBACK]);
	sqlite3_reset(s->stmt[SPOOL_STMT_ROLLBACK]);
}

static int spool_commit(struct spool *s)
{
	int r = spool_run(s, s->stmt[SPOOL_STMT_COMMIT]);

	if (r < 0)
		spool_rollback(s);

	return r;
}

/* --- opening --- */

/* Checks an existing file of the spool: ours, regular, mode 0600 (tightened
 * with a warning otherwise). */
static int spool_check_mode(struct spool *s, const char *path,
			    const struct stat *st, int fd)
{
	mode_t mode = st->st_mode & 07777;
	size_t used;
	int err;

	if (!S_ISREG(st->st_mode)) {
		spool_set_msg(s, "%s is not a regular file", path);
		return -EINVAL;
	}

	if (st->st_uid != geteuid()) {
		spool_set_msg(s, "%s is owned by uid %u, not by this user (%u)",
			      path, (unsigned) st->st_uid, (unsigned) geteuid());
		return -EPERM;
	}

	if (mode == SPOOL_FILE_MODE)
		return 0;

	if ((fd >= 0 ? fchmod(fd, SPOOL_FILE_MODE) :
			chmod(path, SPOOL_FILE_MODE)) < 0) {
		err = errno;
		spool_set_msg(s, "cannot set mode 0600 on %s: %s", path,
			      strerror(err));
		return -err;
	}

	used = strlen(s->warning);
	snprintf(s->warning + used, sizeof(s->warning) - used,
		 "%s%s had mode %04o, tightened to 0600%s", used ? "; " : "",
		 path, (unsigned) mode,
		 mode & 0066 ? " (its keys may have been exposed to others)" : "");
	return 0;
}

/* Creates the database file 0600 before SQLite sees it, or checks it. */
static int spool_prepare_db_file(struct spool *s, const char *path)
{
	struct stat st;
	bool created = true;
	int fd;
	int r;

	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC |
		  O_NOCTTY, SPOOL_FILE_MODE);
	if (fd < 0 && errno == EEXIST) {
		created = false;
		fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	}

	if (fd < 0) {
		r = -errno;
		spool_set_msg(s, "cannot open %s: %s", path, strerror(-r));
		return r;
	}

	r = fstat(fd, &st) < 0 ? -errno : 0;
	if (r < 0)
		spool_set_msg(s, "cannot stat %s: %s", path, strerror(-r));
	else if (created)	/* the umask may have taken bits away */
		r = fchmod(fd, SPOOL_FILE_MODE) < 0 ? -errno : 0;
	else
		r = spool_check_mode(s, path, &st, fd);

	/* Closed before SQLite opens the file: closing any descriptor of a
	 * file drops the POSIX locks SQLite holds on it. */
	close(fd);
	return r;
}

/* The -wal and -shm files: absent is fine; present, they get the database
 * file's treatment.  Path-based on purpose, never open()+close(), for the
 * same POSIX lock reason. */
static int spool_check_sidecar(struct spool *s, const char *suffix)
{
	char path[4096];
	struct stat st;
	int err;

	if ((size_t) snprintf(path, sizeof(path), "%s%s", s->path, suffix) >=
			sizeof(path)) {
		spool_set_msg(s, "%s%s: path too long", s->path, suffix);
		return -ENAMETOOLONG;
	}

	if (lstat(path, &st) < 0) {
		err = errno;
		if (err == ENOENT)
			return 0;

		spool_set_msg(s, "cannot stat %s: %s", path, strerror(err));
		return -err;
	}

	return spool_check_mode(s, path, &st, -1);
}

static int spool_check_sidecars(struct spool *s)
{
	int r = spool_check_sidecar(s, "-wal");

	if (r < 0)
		return r;

	return spool_check_sidecar(s, "-shm");
}

static int spool_exec(struct spool *s, const char *sql)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : spool_fail(s, rc);
}

/* A store is never committed while spool_remove_batch's NORMAL is on. */
static int spool_sync_full(struct spool *s)
{
	int r;

	if (!s->sync_normal)
		return 0;

	r = spool_exec(s, SPOOL_SYNC_FULL);
	if (r == 0)
		s->sync_normal = false;

	return r;
}

/* Runs a statement that returns one integer (a PRAGMA query, a count). */
static int spool_query_int(struct spool *s, const char *sql, int64_t *value)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return spool_fail(s, rc);

	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*value = sqlite3_column_int64(st, 0);

	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : spool_fail(s, rc);
}

static int spool_set_journal_wal(struct spool *s)
{
	const unsigned char *mode;
	sqlite3_stmt *st;
	bool wal;
	int rc;

	rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st,
				NULL);
	if (rc != SQLITE_OK)
		return spool_fail(s, rc);

	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return spool_fail(s, rc);
	}

	mode = sqlite3_column_text(st, 0);
	wal = mode && strcmp((const char *) mode, "wal") == 0;
	sqlite3_finalize(st);

	if (!wal) {
		spool_set_msg(s, "cannot switch to WAL journal mode");
		return -EIO;
	}

	return 0;
}

static int spool_connect(struct spool *s)
{
	int rc;
	int r;

	rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE |
			     SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK)
		return s->db ? spool_fail(s, rc) : -ENOMEM;

	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, SPOOL_BUSY_TIMEOUT_MS);
	/* Lookaside slots are reused without a free, so a small payload's
	 * record buffer could outlive the message there: every allocation
	 * goes through the (wiping) heap instead. */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 0, 0);

	r = spool_set_journal_wal(s);
	if (r < 0)
		return r;

	/* temp_store: no temporary file ever holds a payload. */
	return spool_exec(s, "PRAGMA synchronous = FULL;"
			  "PRAGMA secure_delete = ON;"
			  "PRAGMA foreign_keys = ON;"
			  "PRAGMA temp_store = MEMORY;");
}

/* Refuses a database that is not a spool, or a newer spool. */
static int spool_check_identity(struct spool *s, int64_t version)
{
	int64_t app_id;
	int64_t objects;
	int r;

	r = spool_query_int(s, "PRAGMA application_id", &app_id);
	if (r < 0)
		return r;

	r = spool_query_int(s, "SELECT count(*) FROM sqlite_schema", &objects);
	if (r < 0)
		return r;

	if (app_id != SPOOL_APPLICATION_ID && (app_id != 0 || objects > 0)) {
		spool_set_msg(s, "not an lmrsec spool (application_id %lld)",
			      (long long) app_id);
		return -EINVAL;
	}

	if (version < 0 || version > SPOOL_SCHEMA_VERSION) {
		spool_set_msg(s, "spool schema version %lld is not one this "
			      "agent knows (0 to %d)", (long long) version,
			      SPOOL_SCHEMA_VERSION);
		return -EPROTONOSUPPORT;
	}

	return 0;
}

static int spool_migrate_locked(struct spool *s)
{
	char pragma[96];
	int64_t version;
	int r;

	r = spool_query_int(s, "PRAGMA user_version", &version);
	if (r < 0)
		return r;

	r = spool_check_identity(s, version);
	if (r < 0 || version == SPOOL_SCHEMA_VERSION)
		return r;

	for (; version < SPOOL_SCHEMA_VERSION; version++) {
		r = spool_exec(s, spool_migrations[version]);
		if (r < 0)
			return r;
	}

	snprintf(pragma, sizeof(pragma),
		 "PRAGMA user_version = %d; PRAGMA application_id = %d;",
		 SPOOL_SCHEMA_VERSION, SPOOL_APPLICATION_ID);
	return spool_exec(s, pragma);
}

/* Brings the schema to SPOOL_SCHEMA_VERSION in one transaction. */
static int spool_migrate(struct spool *s)
{
	int r = spool_exec(s, "BEGIN IMMEDIATE");

	if (r < 0)
		return r;

	r = spool_migrate_locked(s);
	if (r < 0) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}

	r = spool_exec(s, "COMMIT");
	if (r < 0)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);

	return r;
}

static int spool_prepare_statements(struct spool *s)
{
	int rc;
	int i;

	for (i = 0; i < SPOOL_STMT_COUNT; i++) {
		rc = sqlite3_prepare_v3(s->db, spool_sql[i], -1,
					SQLITE_PREPARE_PERSISTENT,
					&s->stmt[i], NULL);
		if (rc != SQLITE_OK)
			return spool_fail(s, rc);
	}

	return 0;
}

static int spool_open_steps(struct spool *s)
{
	int r;

	r = spool_prepare_db_file(s, s->path);
	if (r < 0)
		return r;

	r = spool_check_sidecars(s);
	if (r < 0)
		return r;

	r = spool_connect(s);
	if (r < 0)
		return r;

	r = spool_migrate(s);
	if (r < 0)
		return r;

	r = spool_prepare_statements(s);
	if (r < 0)
		return r;

	/* SQLite gives -wal and -shm the database file's mode; check anyway. */
	return spool_check_sidecars(s);
}

/* One line naming the file (once) and the problem; NULL without memory. */
static char *spool_open_error(const struct spool *s, int r)
{
	const char *problem = s->errmsg[0] ? s->errmsg : strerror(-r);
	char *line;
	int n;

	if (strstr(problem, s->path))
		n = asprintf(&line, "spool: %s", problem);
	else
		n = asprintf(&line, "spool %s: %s", s->path, problem);

	return n < 0 ? NULL : line;
}

int spool_open(const char *path, struct spool **out, char **errmsg)
{
	struct spool *s;
	int r;

	if (errmsg)
		*errmsg = NULL;

	if (!out)
		return -EINVAL;

	*out = NULL;
	if (!path || !*path)
		return -EINVAL;

	spool_global_init();	/* -EALREADY only costs the heap wiping */

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;

	s->path = strdup(path);
	if (!s->path) {
		free(s);
		return -ENOMEM;
	}

	r = spool_open_steps(s);
	if (r < 0) {
		if (errmsg)
			*errmsg = spool_open_error(s, r);

		spool_close(s);
		return r;
	}

	*out = s;
	return 0;
}

void spool_close(struct spool *s)
{
	int i;

	if (!s)
		return;

	for (i = 0; i < SPOOL_STMT_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);

	/* The last connection checkpoints and deletes the WAL. */
	sqlite3_close(s->db);
	free(s->path);
	free(s);
}

const char *spool_errmsg(const struct spool *s)
{
	return s ? s->errmsg : "";
}

const char *spool_warning(const struct spool *s)
{
	return s && s->warning[0] ? s->warning : NULL;
}

/* --- storing --- */

int spool_record_check(const struct spool_record *rec)
{
	if (!rec || !rec->lmr_type || !rec->kmf_uri)
		return -EINVAL;

	if (!rec->payload && rec->payload_len > 0)
		return -EINVAL;

	if (rec->payload_len > SPOOL_PAYLOAD_MAX)
		return -EMSGSIZE;

	return 0;
}

/* 1 with *id set when key was accepted before, 0 when not. */
static int spool_seen_lookup(struct spool *s, const char *key, int64_t *id)
{
	sqlite3_stmt *st = s->stmt[SPOOL_STMT_SEEN_LOOKUP];
	int rc;

	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);

	spool_done(st);
	if (rc == SQLITE_ROW)
		return 1;

	return rc == SQLITE_DONE ? 0 : spool_fail(s, rc);
}

static int spool_message_insert(struct spool *s, const struct spool_record *rec)
{
	sqlite3_stmt *st = s->stmt[SPOOL_STMT_MESSAGE_INSERT];

	/* SQLITE_STATIC: SQLite copies straight into its pages, and the
	 * bindings are cleared before the caller's buffers can go. */
	sqlite3_bind_int64(st, 1, rec->received_us);
	sqlite3_bind_text(st, 2, rec->lmr_type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, rec->kmf_uri, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, rec->mc_service_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, rec->sender, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, rec->dedupe_key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, (sqlite3_int64) rec->payload_len);
	sqlite3_bind_blob(st, 8, rec->fingerprint, SPOOL_FINGERPRINT_LEN,
			  SQLITE_STATIC);
	if (rec->payload_len > 0)
		sqlite3_bind_blob(st, 9, rec->payload, (int) rec->payload_len,
				  SQLITE_STATIC);
	else
		sqlite3_bind_zeroblob(st, 9, 0);	/* NULL pointer binds NULL */

	return spool_run(s, st);
}

static int spool_seen_insert(struct spool *s, const struct spool_record *rec,
			     int64_t id)
{
	sqlite3_stmt *st = s->stmt[SPOOL_STMT_SEEN_INSERT];

	sqlite3_bind_text(st, 1, rec->dedupe_key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, id);
	sqlite3_bind_int64(st, 3, rec->received_us);
	return spool_run(s, st);
}

/* Inside the open transaction: *result is 0 or -EEXIST; a negative return
 * fails the whole transaction. */
static int spool_store_one(struct spool *s, struct spool_record *rec,
			   int *result)
{
	int64_t id;
	int r;

	if (rec->dedupe_key) {
		r = spool_seen_lookup(s, rec->dedupe_key, &id);
		if (r < 0)
			return r;

		if (r > 0) {
			rec->id = id;
			*result = -EEXIST;
			return 0;
		}
	}

	r = spool_message_insert(s, rec);
	if (r < 0)
		return r;

	id = sqlite3_last_insert_rowid(s->db);
	if (rec->dedupe_key) {
		r = spool_seen_insert(s, rec, id);
		if (r < 0)
			return r;
	}

	rec->id = id;
	*result = 0;
	return 0;
}

static int spool_store_all(struct spool *s, struct spool_record **recs,
			   size_t n, int *results)
{
	size_t i;
	int r;

	r = spool_sync_full(s);
	if (r < 0)
		return r;

	r = spool_begin(s);
	if (r < 0)
		return r;

	for (i = 0; i < n; i++) {
		r = spool_store_one(s, recs[i], &results[i]);
		if (r < 0) {
			spool_rollback(s);
			return r;
		}
	}

	return spool_commit(s);
}

int spool_store_batch(struct spool *s, struct spool_record **recs, size_t n,
		      int *results)
{
	size_t i;
	int r;

	if (!s || (n > 0 && (!recs || !results)))
		return -EINVAL;

	for (i = 0; i < n; i++) {
		r = spool_record_check(recs[i]);
		if (r < 0)
			return r;
	}

	if (n == 0)
		return 0;

	r = spool_store_all(s, recs, n, results);
	if (r < 0) {
		for (i = 0; i < n; i++)
			recs[i]->id = 0;
	}

	return r;
}

int spool_store(struct spool *s, struct spool_record *rec)
{
	int result;
	int r;

	r = spool_store_batch(s, &rec, 1, &result);
	return r < 0 ? r : result;
}

/* --- removing --- */

int spool_remove(struct spool *s, int64_t id)
{
	sqlite3_stmt *st;
	int r;

	if (!s)
		return -EINVAL;

	st = s->stmt[SPOOL_STMT_MESSAGE_DELETE];
	sqlite3_bind_int64(st, 1, id);
	r = spool_run(s, st);
	if (r < 0)
		return r;

	return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

/* Inside the open transaction: deletes ids[0..n); returns how many were
 * there, or a negative errno. */
static int spool_delete_ids(struct spool *s, const int64_t *ids, size_t n)
{
	sqlite3_stmt *st = s->stmt[SPOOL_STMT_MESSAGE_DELETE];
	int removed = 0;
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, ids[i]);
		r = spool_run(s, st);
		if (r < 0)
			return r;

		removed += sqlite3_changes(s->db) > 0;
	}

	return removed;
}

static int spool_remove_all(struct spool *s, const int64_t *ids, size_t n)
{
	int removed;
	int r;

	r = spool_begin(s);
	if (r < 0)
		return r;

	removed = spool_delete_ids(s, ids, n);
	if (removed < 0) {
		spool_rollback(s);
		return removed;
	}

	r = spool_commit(s);
	return r < 0 ? r : removed;
}

int spool_remove_batch(struct spool *s, const int64_t *ids, size_t n)
{
	int r;

	if (!s || (n > 0 && !ids) || n > INT32_MAX)
		return -EINVAL;

	if (n == 0)
		return 0;

	/* In WAL mode NORMAL skips the fsync of this commit only; the next
	 * FULL commit or checkpoint syncs the WAL, these frames included. */
	r = spool_exec(s, SPOOL_SYNC_NORMAL);
	if (r < 0)
		return r;

	s->sync_normal = true;
	r = spool_remove_all(s, ids, n);
	if (spool_sync_full(s) < 0 && r >= 0)
		r = -EIO;

	return r;
}

int spool_checkpoint(struct spool *s)
{
	int rc;

	if (!s)
		return -EINVAL;

	rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
				       NULL, NULL);
	if ((rc & 0xff) == SQLITE_BUSY) {
		spool_set_msg(s, "checkpoint blocked by another connection");
		return -EBUSY;
	}

	return rc == SQLITE_OK ? 0 : spool_fail(s, rc);
}

/* --- reading --- */

static char *column_text(sqlite3_stmt *st, enum spool_column col)
{
	return (char *) sqlite3_column_text(st, col);
}

/* Fills a record that borrows the row's memory (valid until the next step). */
static void spool_row_view(sqlite3_stmt *st, bool with_payload,
			   struct spool_record *rec)
{
	const void *fp;
	int64_t len;

	memset(rec, 0, sizeof(*rec));
	rec->id = sqlite3_column_int64(st, SPOOL_COL_ID);
	rec->received_us = sqlite3_column_int64(st, SPOOL_COL_RECEIVED);
	rec->lmr_type = column_text(st, SPOOL_COL_LMR_TYPE);
	rec->kmf_uri = column_text(st, SPOOL_COL_KMF_URI);
	rec->mc_service_id = column_text(st, SPOOL_COL_MC_SERVICE_ID);
	rec->sender = column_text(st, SPOOL_COL_SENDER);
	rec->dedupe_key = column_text(st, SPOOL_COL_DEDUPE_KEY);

	fp = sqlite3_column_blob(st, SPOOL_COL_FINGERPRINT);
	if (fp && sqlite3_column_bytes(st, SPOOL_COL_FINGERPRINT) ==
			SPOOL_FINGERPRINT_LEN)
		memcpy(rec->fingerprint, fp, SPOOL_FINGERPRINT_LEN);

	if (!with_payload) {
		len = sqlite3_column_int64(st, SPOOL_COL_PAYLOAD_LEN);
		rec->payload_len = len > 0 ? (size_t) len : 0;
		return;
	}

	rec->payload = (uint8_t *) sqlite3_column_blob(st, SPOOL_COL_PAYLOAD);
	rec->payload_len = (size_t) sqlite3_column_bytes(st, SPOOL_COL_PAYLOAD);
}

static int copy_string(const char *src, char **dst)
{
	*dst = NULL;
	if (!src)
		return 0;

	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

static int copy_payload(const struct spool_record *src,
			struct spool_record *dst)
{
	dst->payload_len = src->payload_len;
	if (!src->payload || src->payload_len == 0)
		return 0;

	dst->payload = malloc(src->payload_len);
	if (!dst->payload)
		return -ENOMEM;

	memcpy(dst->payload, src->payload, src->payload_len);
	return 0;
}

/* Makes dst an owned copy of src; on failure dst is cleared. */
static int spool_record_copy(const struct spool_record *src,
			     struct spool_record *dst)
{
	memset(dst, 0, sizeof(*dst));
	dst->id = src->id;
	dst->received_us = src->received_us;
	memcpy(dst->fingerprint, src->fingerprint, SPOOL_FINGERPRINT_LEN);

	if (copy_string(src->lmr_type, &dst->lmr_type) < 0 ||
	    copy_string(src->kmf_uri, &dst->kmf_uri) < 0 ||
	    copy_string(src->mc_service_id, &dst->mc_service_id) < 0 ||
	    copy_string(src->sender, &dst->sender) < 0 ||
	    copy_string(src->dedupe_key, &dst->dedupe_key) < 0 ||
	    copy_payload(src, dst) < 0) {
		spool_record_clear(dst);
		return -ENOMEM;
	}

	return 0;
}

int spool_get(struct spool *s, int64_t id, struct spool_record *out)
{
	struct spool_record view;
	sqlite3_stmt *st;
	int rc;
	int r;

	if (!s || !out)
		return -EINVAL;

	memset(out, 0, sizeof(*out));
	st = s->stmt[SPOOL_STMT_MESSAGE_GET];
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = rc == SQLITE_DONE ? -ENOENT : spool_fail(s, rc);
		spool_done(st);
		return r;
	}

	spool_row_view(st, true, &view);
	r = spool_record_copy(&view, out);
	spool_done(st);
	return r;
}

/* Steps st (already bound), visiting each row; resets st. */
static int spool_walk(struct spool *s, sqlite3_stmt *st, bool with_payload,
		      spool_visit_fn fn, void *user)
{
	struct spool_record view;
	int rc;
	int r = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		spool_row_view(st, with_payload, &view);
		r = fn(&view, user);
		if (r < 0)
			break;
	}

	if (r == 0 && rc != SQLITE_DONE)
		r = spool_fail(s, rc);

	spool_done(st);
	return r;
}

int spool_foreach(struct spool *s, spool_visit_fn fn, void *user)
{
	if (!s || !fn)
		return -EINVAL;

	return spool_walk(s, s->stmt[SPOOL_STMT_MESSAGE_ALL], true, fn, user);
}

int spool_list(struct spool *s, int64_t after_id, size_t limit,
	       spool_visit_fn fn, void *user)
{
	sqlite3_stmt *st;

	if (!s || !fn)
		return -EINVAL;

	st = s->stmt[SPOOL_STMT_MESSAGE_LIST];
	sqlite3_bind_int64(st, 1, after_id);
	/* A negative LIMIT means none to SQLite. */
	sqlite3_bind_int64(st, 2, limit > 0 && limit <= INT64_MAX ?
			   (int64_t) limit : -1);
	return spool_walk(s, st, false, fn, user);
}

int spool_totals(struct spool *s, uint64_t *messages, uint64_t *payload_bytes)
{
	sqlite3_stmt *st;
	int rc;

	if (!s)
		return -EINVAL;

	st = s->stmt[SPOOL_STMT_TOTALS];
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		spool_done(st);
		return spool_fail(s, rc);
	}

	if (messages)
		*messages = (uint64_t) sqlite3_column_int64(st, 0);
	if (payload_bytes)
		*payload_bytes = (uint64_t) sqlite3_column_int64(st, 1);

	spool_done(st);
	return 0;
}

/* --- expiry --- */

struct spool_expired {
	struct spool_record *recs;
	size_t n, cap;
};

static int spool_expired_add(const struct spool_record *rec, void *user)
{
	struct spool_expired *list = user;
	struct spool_record *grown;
	size_t cap;

	if (list->n == list->cap) {
		cap = list->cap ? list->cap * 2 : 16;
		grown = reallocarray(list->recs, cap, sizeof(*grown));
		if (!grown)
			return -ENOMEM;

		list->recs = grown;
		list->cap = cap;
	}

	if (spool_record_copy(rec, &list->recs[list->n]) < 0)
		return -ENOMEM;

	list->n++;
	return 0;
}

static void spool_expired_free(struct spool_expired *list)
{
	size_t i;

	for (i = 0; i < list->n; i++)
		spool_record_clear(&list->recs[i]);

	free(list->recs);
}

/* In one transaction: collects the metadata of, then deletes, every
 * message received before cutoff_us. */
static int spool_expire_collect(struct spool *s, int64_t cutoff_us,
				struct spool_expired *list)
{
	sqlite3_stmt *st;
	int r;

	r = spool_begin(s);
	if (r < 0)
		return r;

	st = s->stmt[SPOOL_STMT_MESSAGE_EXPIRED];
	sqlite3_bind_int64(st, 1, cutoff_us);
	r = spool_walk(s, st, false, spool_expired_add, list);
	if (r == -ENOMEM)
		spool_set_msg(s, "out of memory listing expired messages");

	if (r == 0) {
		st = s->stmt[SPOOL_STMT_MESSAGE_EXPIRE];
		sqlite3_bind_int64(st, 1, cutoff_us);
		r = spool_run(s, st);
	}

	if (r < 0) {
		spool_rollback(s);
		return r;
	}

	return spool_commit(s);
}

int spool_expire(struct spool *s, int64_t cutoff_us, spool_visit_fn fn,
		 void *user)
{
	struct spool_expired list = { 0 };
	size_t i;
	int r;

	if (!s)
		return -EINVAL;

	r = spool_expire_collect(s, cutoff_us, &list);
	if (r == 0 && fn) {
		for (i = 0; i < list.n; i++)
			fn(&list.recs[i], user);
	}

	if (r == 0)
		r = list.n > INT32_MAX ? INT32_MAX : (int) list.n;

	spool_expired_free(&list);
	return r;
}

int spool_prune_seen(struct spool *s, int64_t cutoff_us)
{
	sqlite3_stmt *st;
	int r;

	if (!s)
		return -EINVAL;

	st = s->stmt[SPOOL_STMT_SEEN_PRUNE];
	sqlite3_bind_int64(st, 1, cutoff_us);
	r = spool_run(s, st);
	if (r < 0)
		return r;

	return sqlite3_changes(s->db);
}

void spool_record_clear(struct spool_record *rec)
{
	if (!rec)
		return;

	if (rec->payload)
		explicit_bzero(rec->payload, rec->payload_len);

	free(rec->payload);
	free(rec->lmr_type);
	free(rec->kmf_uri);
	free(rec->mc_service_id);
	free(rec->sender);
	free(rec->dedupe_key);
	memset(rec, 0, sizeof(*rec));
}
