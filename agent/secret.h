/*
 * secret — the SIP password in the Secret Service (libsecret), shared by
 * the agent (creds.c) and `lmrsecctl credentials`.
 *
 * One item per identity: schema SECRET_SCHEMA_NAME, attributes
 * mc-service-id and username, in the default collection.
 *
 * Every call is bounded by SECRET_TIMEOUT_MS: the D-Bus calls run on a
 * private main context and are cancelled at the deadline (gnome-keyring
 * with a missing HOME, for one, leaves calls hanging for 25 s).  Errors are
 * one line saying which: no session bus, no Secret Service on it, the
 * keyring locked, nothing stored, no answer in time.  Plain C interface:
 * the CLI includes this without GLib.
 */
#ifndef LMRSEC_SECRET_H
#define LMRSEC_SECRET_H

#define SECRET_SCHEMA_NAME "org.lmrsec.SipPassword"
#define SECRET_TIMEOUT_MS 5000

/* 0 and *password (release with secret_password_free), or:
 *   -ENOTCONN      no D-Bus session bus, or no Secret Service on it
 *   -EACCES        the item is in a locked collection
 *   -ENOENT        nothing stored for this identity
 *   -ETIMEDOUT     no answer within SECRET_TIMEOUT_MS
 *   -EIO           any other failure of the service
 * with *error one line (free()). */
int secret_lookup(const char *mc_service_id, const char *username,
		  char **password, char **error);

/* Stores (or replaces) the password.  0 or as secret_lookup. */
int secret_store(const char *mc_service_id, const char *username,
		 const char *password, char **error);

/* Removes it.  0, -ENOENT when there was none, or as secret_lookup. */
int secret_clear(const char *mc_service_id, const char *username, char **error);

/* Wipes and frees a password from secret_lookup. */
void secret_password_free(char *password);

#endif
