#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "iwdata.h"
static void same(const struct iwdata_field *a, const struct iwdata_field *b)
{ if (a->len != b->len || (a->len && memcmp(a->ptr, b->ptr, a->len))) abort(); }
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct iwdata_msg m, m2;
	static uint8_t out[IWDATA_MAX_ENCODED_SIZE];
	size_t w;
	unsigned flags = n ? (d[n-1] & 1) : 0;
	int r = iwdata_decode(d, n, flags, &m);
	if (r < 0) { if (!iwdata_strerror(r) || r < -15) abort(); return 0; }
	if (iwdata_encode(&m, out, sizeof(out), &w) != 0) abort();
	if (w != iwdata_encoded_size(&m) || w > n) abort();
	if (iwdata_decode(out, w, flags, &m2) != 0) abort();
	same(&m.lmr_type,&m2.lmr_type); same(&m.kmf_uri,&m2.kmf_uri);
	same(&m.mc_service_id,&m2.mc_service_id); same(&m.payload,&m2.payload);
	return 0;
}
