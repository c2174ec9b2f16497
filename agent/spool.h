/*
 * spool — the durable store of key messages (DESIGN §3).
 *
 * One SQLite database in the state directory: WAL, synchronous=FULL,
 * secure_delete=ON, mode 0600.  A message is in the spool from the commit
 * that precedes its 200 OK until its consumer's ACK; the `seen` table keeps
 * each accepted dedupe key (Call-ID, CSeq, From tag) longer than the message,
 * so a re-sent MESSAGE is recognised after the ACK and across restarts.
 *
 * Mechanism only: bounds, TTL and retention are the broker's policy, passed
 * in as arguments.  Plain C and SQLite, no GLib, no logging: failures come
 * back as a negative errno plus spool_errmsg().
 *
 * Errors: -EEXIST (duplicate dedupe key), -ENOENT (no such message),
 * -EINVAL / -EMSGSIZE (a record the spool will not take), -ENOSPC (SQLite
 * reported the disk or database full), -EIO (any other SQLite failure,
 * including a locked or read-only database), -ENOMEM.  A failed store or
 * expire is rolled back whole: nothing is half-stored.
 *
 * One connection, used from one thread.  Callbacks must not call
 * spool_foreach, spool_list or spool_expire on the same spool.
 */
#ifndef LMRSEC_SPOOL_H
#define LMRSEC_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#define SPOOL_SCHEMA_VERSION	1
#define SPOOL_FINGERPRINT_LEN	32		/* SHA-256 */
/* Above any payload a frame can carry (DESIGN §4: frames ≤ 262144 bytes). */
#define SPOOL_PAYLOAD_MAX	262144

struct spool;

struct spool_record {
	int64_t id;			/* set by the spool; increasing, never reused */
	int64_t received_us;		/* wall clock, set by the caller */
	char *lmr_type;			/* mandatory */
	char *kmf_uri;			/* mandatory */
	char *mc_service_id;		/* optional (NULL) */
	char *sender;			/* optional (NULL) */
	char *dedupe_key;		/* NULL: never treated as a duplicate */
	uint8_t *payload;		/* key material; NULL only when payload_len is 0 */
	size_t payload_len;
	uint8_t fingerprint[SPOOL_FINGERPRINT_LEN];	/* SHA-256 of payload, by the caller */
};

/*
 * Called once per message.  rec and everything it points to are borrowed:
 * valid only during the call, copy what you keep.  Return 0 to go on, a
 * negative errno to stop; the walk then returns that value.
 */
typedef int (*spool_visit_fn)(const struct spool_record *rec, void *user);

/*
 * Installs an SQLite heap allocator that wipes every block it frees, so key
 * material SQLite copied (page cache, row buffers) does not linger in freed
 * memory.  Process-wide; must run before anything else in the process uses
 * SQLite.  spool_open() calls it; main() may call it first.  -EALREADY when
 * SQLite was initialised without it (the spool still works).
 */
int spool_global_init(void);

/*
 * Opens or creates the spool at path.  A new file is created 0600; an
 * existing one must be a regular file (not a symlink) owned by this user —
 * if its mode is not 0600 it is tightened to 0600 and spool_warning() says
 * so (a looser mode means its keys may have been readable to others).  The
 * -wal and -shm files are kept 0600 too.  A database with a newer schema
 * than SPOOL_SCHEMA_VERSION is refused (-EPROTONOSUPPORT).
 * On failure *errmsg (when errmsg is not NULL) is a malloc'd line naming the
 * file and the problem; free() it.  On success *errmsg is NULL.
 */
int spool_open(const char *path, struct spool **out, char **errmsg);
void spool_close(struct spool *s);

/* Sqlite's message for the last failure on s, or "" when none. */
const char *spool_errmsg(const struct spool *s);
/* A note from spool_open the caller should log (mode tightened), or NULL. */
const char *spool_warning(const struct spool *s);

/*
 * Stores rec durably (one fsync'd transaction with its seen row) and sets
 * rec->id.  -EEXIST when rec->dedupe_key was accepted before (even if that
 * message is gone): rec->id is then the earlier message's id and nothing is
 * stored.  The spool does not take ownership of rec.
 */
int spool_store(struct spool *s, struct spool_record *rec);

/*
 * Group commit: stores recs[0..n) in one transaction.  results[i] is 0
 * (stored, recs[i]->id set) or -EEXIST (duplicate, recs[i]->id the earlier
 * id; a key repeated inside the batch is a duplicate of its first use).
 * Returns 0, or a negative errno when the whole batch failed and nothing was
 * stored (every recs[i]->id is then 0 and results[] is untouched).
 */
int spool_store_batch(struct spool *s, struct spool_record **recs, size_t n,
		      int *results);

/* 0 when rec is one the spool takes, else -EINVAL or -EMSGSIZE: lets a
 * caller keep a record that would fail a whole batch out of it. */
int spool_record_check(const struct spool_record *rec);

/*
 * Deletes message id (-ENOENT if absent).  secure_delete zeroes its pages,
 * but until the next spool_checkpoint() the WAL file still holds the frames
 * the message was written in.
 */
int spool_remove(struct spool *s, int64_t id);

/*
 * Deletes messages ids[0..n) in one transaction and returns how many were
 * there (an absent id is skipped), or a negative errno (nothing deleted).
 * Not fsync'd (synchronous=NORMAL for this one commit): the deletion
 * survives a crash of the process at once, and a power loss from the next
 * durable commit (spool_store*) or spool_checkpoint() on — before that a
 * power loss can bring the messages back (at-least-once allows a second
 * delivery; see docs/behaviour.md).  secure_delete zeroes the pages as in
 * spool_remove().
 */
int spool_remove_batch(struct spool *s, const int64_t *ids, size_t n);

/*
 * Copies every committed page into the database file and truncates the WAL
 * to zero bytes, so removed payloads are gone from both files.  Costs a few
 * fsyncs: call it when the queue drains or on a timer, not per message.
 * -EBUSY when another connection's reader prevented a full checkpoint.
 */
int spool_checkpoint(struct spool *s);

/* Fills out with an owned copy of message id (clear it with
 * spool_record_clear); -ENOENT if absent. */
int spool_get(struct spool *s, int64_t id, struct spool_record *out);

/* Visits every message, payload included, in id (arrival) order. */
int spool_foreach(struct spool *s, spool_visit_fn fn, void *user);

/*
 * Visits up to limit messages (0: no limit) with id > after_id, in id order,
 * metadata only: payload is NULL, payload_len and fingerprint are set.
 */
int spool_list(struct spool *s, int64_t after_id, size_t limit,
	       spool_visit_fn fn, void *user);

int spool_totals(struct spool *s, uint64_t *messages, uint64_t *payload_bytes);

/*
 * Deletes every message received before cutoff_us, in one transaction, then
 * calls fn (may be NULL) for each of them, metadata only, in id order.  fn
 * runs only after the deletion is committed, so a report never names a
 * message that is still kept; its return value is ignored.  Returns the
 * number of messages expired or a negative errno (nothing deleted, fn not
 * called).
 */
int spool_expire(struct spool *s, int64_t cutoff_us, spool_visit_fn fn,
		 void *user);

/*
 * Forgets dedupe keys accepted before cutoff_us whose message is no longer
 * in the spool (a key whose message is still kept is never pruned, so
 * pruning cannot cause a second delivery of it).  Returns the number
 * forgotten or a negative errno.
 */
int spool_prune_seen(struct spool *s, int64_t cutoff_us);

/* Wipes the payload, frees every field and zeroes rec.  NULL is fine. */
void spool_record_clear(struct spool_record *rec);

#endif
