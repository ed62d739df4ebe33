"""Reads the simulator's GET /transactions with MultiSafepay's official Python SDK
(`TransactionManager.get_transactions`), following `after` cursors. Run by
tests/simulator/sdk.rs; argv: base_url api_key expected_rows. Prints one line per check; exits
non-zero on the first failure."""

import os
import sys

os.environ["MSP_SDK_BUILD_PROFILE"] = "dev"
os.environ["MSP_SDK_ALLOW_CUSTOM_BASE_URL"] = "1"

from multisafepay.sdk import Sdk  # noqa: E402
from multisafepay.api.paths.transactions.response.transaction import Transaction  # noqa: E402

base_url, api_key, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (": " + str(detail) if detail else ""))
    if not ok:
        sys.exit(1)


manager = Sdk(api_key=api_key, is_production=False, base_url=base_url).get_transaction_manager()
first = manager.get_transactions({"limit": 2})
listing = first.get_data()
check("the first page parses into a ListingPager", listing is not None, first.dict().get("status_code"))
check("no validation warnings", not first.dict().get("warnings"), first.dict().get("warnings"))
rows = list(listing.data)
check("its rows are Transaction models", all(isinstance(r, Transaction) for r in rows), rows)
check("two rows on the first page", len(rows) == 2, rows)
pager = listing.get_pager()
check("the pager has an after cursor", pager is not None and pager.cursor is not None and pager.cursor.after, pager)
seen = rows
while True:
    page = manager.get_transactions({"limit": 2, "after": pager.cursor.after}).get_data()
    if not page.data:
        break
    seen.extend(page.data)
    pager = page.get_pager()
check("every row once, following after cursors", len(seen) == expected and len({r.transaction_id for r in seen}) == expected, [r.transaction_id for r in seen])
kinds = {r.type for r in seen}
check("payments, a refund and a chargeback", {"payment", "refund", "chargeback"} <= kinds, kinds)
refund = next(r for r in seen if r.type == "refund")
check("a refund row names its order and amount", refund.order_id and refund.amount != 0 and refund.created, refund)
