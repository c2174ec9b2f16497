#!/usr/bin/env bash
# The demo (README command 1). Until the agent exists it runs the test bed's
# self-check: real Kamailio as the MC service server and sipp as the IWF.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export top_srcdir=${top_srcdir:-$(cd "$here/.." && pwd)}
exec bash "$here/integration/testbed-selftest.sh"
