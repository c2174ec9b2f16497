/*
 * sha256 — SHA-256 (FIPS 180-4) for payload fingerprints, shared by the
 * agent (agent/inbound.c) and liblmrsec.  libc only.  Every intermediate
 * value derived from the input (message schedule, padded tail, state) is
 * wiped before return: the input is key material.
 */
#ifndef LMRSEC_SHA256_H
#define LMRSEC_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32

void sha256_digest(const void *data, size_t len, uint8_t out[SHA256_DIGEST_LEN]);

#endif
