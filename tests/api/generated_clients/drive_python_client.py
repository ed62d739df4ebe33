"""Drives a live gateway's merchant API through the client that openapi-python-client generated
from openapi.yaml (as the package `client`): create a checkout, read it, list checkouts, refund
it, list its refunds, and read an error. Usage: drive_python_client.py BASE_URL API_KEY.

Every answer must parse as the model the spec promises; any mismatch exits non-zero.
"""

import pkgutil
import sys

import client.api

from client import AuthenticatedClient
from client.api.checkouts import (
    create_checkout,
    create_refund,
    get_checkout,
    list_checkout_refunds,
    list_checkouts,
)
from client.models import (
    Address,
    CardInput,
    Checkout,
    CheckoutCreateRequest,
    CheckoutList,
    CheckoutStatus,
    Currency,
    Customer,
    Error,
    LineItem,
    Refund,
    RefundCreateRequest,
    RefundList,
    RefundReason,
)

base, key = sys.argv[1], sys.argv[2]
# raise_on_unexpected_status: an answer the spec does not list for the operation is an error.
api = AuthenticatedClient(base_url=base, token=key, raise_on_unexpected_status=True)


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


body = CheckoutCreateRequest(
    reference="py-sdk-1",
    currency=Currency.EUR,
    items=[LineItem(name="T-shirt", quantity=2, unit_amount=1500, tax_rate="0.21")],
    shipping_amount=495,
    customer=Customer(
        email="jo@example.com", ip_address="203.0.113.7", address=Address(country="NL")
    ),
    card=CardInput(number="374500000000015", exp_month=12, exp_year=2030, cvc="1234"),
    return_url=f"{base}/demo/result",
)
created = create_checkout.sync(client=api, body=body, idempotency_key="py-sdk-create-1")
check(isinstance(created, Checkout), f"create answered {created!r}")
check(created.status == CheckoutStatus.SUCCEEDED, f"status {created.status}")
check(created.amount == 3495, f"amount {created.amount}")

read = get_checkout.sync(client=api, id=created.id)
check(isinstance(read, Checkout) and read.id == created.id, f"get answered {read!r}")
check(read.card.last4 == "0015", f"card {read.card!r}")

page = list_checkouts.sync(client=api, limit=5, reference="py-sdk-1")
check(isinstance(page, CheckoutList), f"list answered {page!r}")
check([c.id for c in page.data] == [created.id], f"listed {[c.id for c in page.data]}")
check(page.has_more is False, "has_more")

refund = create_refund.sync(
    client=api,
    id=created.id,
    body=RefundCreateRequest(amount=500, reason=RefundReason.REQUESTED_BY_CUSTOMER),
)
check(isinstance(refund, Refund), f"refund answered {refund!r}")
check(refund.amount == 500 and refund.reason == RefundReason.REQUESTED_BY_CUSTOMER, repr(refund))

refunds = list_checkout_refunds.sync(client=api, id=created.id)
check(isinstance(refunds, RefundList), f"refunds answered {refunds!r}")
check([r.id for r in refunds.data] == [refund.id], "listed refunds")

missing = get_checkout.sync(client=api, id="chk_0193a1b2c3d4e5f60718293a4b5c6d7e")
check(isinstance(missing, Error), f"a missing checkout answered {missing!r}")
check(missing.error.code == "resource_missing", repr(missing.error))
check(len(missing.error.request_id) == 32, repr(missing.error.request_id))
# The SDK offers the merchant API only: nothing of the browser's, MSP's or the operators'.
modules = [m.name for m in pkgutil.walk_packages(client.api.__path__, "client.api.")]
for word in ("health", "metrics", "pay_page", "browser", "notification"):
    check(not any(word in m for m in modules), f"the SDK offers {word}: {modules}")

print("ok", created.id, refund.id)
