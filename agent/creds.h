/*
 * creds — the SIP password from its configured source (DESIGN §5).
 * Never from a command line or the main configuration file.
 */
#ifndef LMRSEC_CREDS_H
#define LMRSEC_CREDS_H

#include "config.h"

#define CREDS_MAX_PASSWORD 1024
#define CREDS_CREDENTIAL_NAME "sip-password"

/* Returns 0 and a malloc'd password (wipe it with creds_free), or a negative
 * errno with *error one line saying what is wrong and what to do. */
int creds_password(const struct lmrsec_config *cfg, char **password, char **error);
void creds_free(char *password);

/* Reads a password file: a regular file, owned by this user, mode 0600 or
 * stricter; trailing newline removed.  Exposed for tests. */
int creds_read_file(const char *path, char **password, char **error);

#endif
