#!/usr/bin/env bash
# tenant_context_check.sh - the RLS tenant context (app.tenant_id) is set in exactly one place: db_begin_tenant
# in src/db.c (issue 18). A second place that sets it by hand is a second copy of a security invariant (a
# transaction-local set_config inside the batch's transaction), so any .c under src/ (searched recursively:
# src/payload, src/cli, src/util too) other than src/db.c that names app.tenant_id fails this test.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bad=0
if ! grep -q "set_config('app.tenant_id'" src/db.c 2>/dev/null; then
	echo "FAIL: src/db.c does not set app.tenant_id (db_begin_tenant is the one place that must)"
	bad=1
fi
# Any spelling names the setting: set_config('app.tenant_id', ...), SET [LOCAL] app.tenant_id, set_config with
# 'app.' 'tenant_id' in one literal. C code has no reason to read it either.
offenders=$(grep -rn --include='*.c' "app\.tenant_id" src | grep -v '^src/db\.c:' || true)
if [ -n "$offenders" ]; then
	echo "FAIL: app.tenant_id is set outside db_begin_tenant (src/db.c); open the transaction with db_begin_tenant:"
	echo "$offenders"
	bad=1
fi
((bad == 0)) || exit 1
echo "ok: app.tenant_id is set only in src/db.c ($(grep -rl --include='*.c' . src | wc -l) .c files searched)"
