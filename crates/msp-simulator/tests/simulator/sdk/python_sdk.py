"""Drives the simulator with MultiSafepay's official Python SDK (PyPI `multisafepay`), changing
nothing but the base URL. Run by tests/simulator/sdk.rs; argv: base_url api_key order_id
notification_body_file auth_header. Prints one line per check; exits non-zero on the first failure."""

import json
import os
import sys
import time
import urllib.request

os.environ["MSP_SDK_BUILD_PROFILE"] = "dev"
os.environ["MSP_SDK_ALLOW_CUSTOM_BASE_URL"] = "1"

from multisafepay.sdk import Sdk  # noqa: E402
from multisafepay.api.paths.orders.request.order_request import OrderRequest  # noqa: E402
from multisafepay.api.paths.orders.request.components.payment_options import PaymentOptions  # noqa: E402
from multisafepay.api.paths.orders.request.components.gateway_info.creditcard import Creditcard  # noqa: E402
from multisafepay.api.shared.customer import Customer  # noqa: E402
from multisafepay.api.paths.orders.order_id.refund.request.refund_request import RefundOrderRequest  # noqa: E402
from multisafepay.util.webhook import Webhook  # noqa: E402

base_url, api_key, order_id, body_file, auth = sys.argv[1:6]


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (": " + str(detail) if detail else ""))
    if not ok:
        sys.exit(1)


sdk = Sdk(api_key=api_key, is_production=False, base_url=base_url)
orders = sdk.get_order_manager()

request = (
    OrderRequest()
    .add_type("direct")
    .add_gateway("AMEX")
    .add_order_id(order_id)
    .add_currency("EUR")
    .add_amount(1000)
    .add_description("Python SDK order")
    .add_payment_options(PaymentOptions().add_redirect_url("https://shop.example/ok").add_cancel_url("https://shop.example/failed"))
    .add_customer(Customer().add_locale("nl_NL").add_ip_address("1.2.3.4"))
    .add_gateway_info(
        Creditcard().add_card_number("374500000000015").add_card_holder_name("J Doe").add_card_expiry_date("3012").add_cvc("123")
    )
)
created = orders.create(request)
data = created.get_data()
check("create answers the completed order", data is not None and data.status == "completed", data)

got = orders.get(order_id).get_data()
check("get parses into the SDK's Order model", got is not None and got.order_id == order_id, got)
check("get has the status", got.status == "completed" and got.financial_status == "completed")

refund = RefundOrderRequest().add_currency("EUR").add_amount(400).add_description("partial")
refunded = orders.refund(order_id, refund)
check("refund parses into the SDK's OrderRefund model", refunded.get_data() is not None, refunded.dict())
check("the order is partial_refunded", orders.get(order_id).get_data().status == "partial_refunded")


def the_refund():
    refund_id = str(refunded.get_data().refund_id)
    related = orders.get(order_id).get_data().related_transactions or []
    return [t for t in related if str(t.transaction_id) == refund_id]


mine = the_refund()
check(
    "the refund is reserved in the order's related_transactions, as the SDK's Transaction model",
    len(mine) == 1 and mine[0].type == "refund" and mine[0].status == "reserved" and mine[0].amount == 400,
    mine,
)
# Move the simulator's clock past the refund delay, as a test does.
simulator_root = base_url[: -len("v1/")]
urllib.request.urlopen(
    urllib.request.Request(
        simulator_root + "sim/clock",
        data=json.dumps({"advance_s": 60}).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
)
deadline = time.monotonic() + 2
while time.monotonic() < deadline and the_refund()[0].status != "completed":
    time.sleep(0.02)
check("once the clock passes the refund delay it is completed", the_refund()[0].status == "completed", the_refund())

with open(body_file, encoding="utf-8") as f:
    body = f.read()
check("the SDK's webhook validator accepts the simulator's notification", Webhook.validate(body, auth, api_key, 600))
check("and refuses it for another key", not Webhook.validate(body, auth, "another-key", 600))
