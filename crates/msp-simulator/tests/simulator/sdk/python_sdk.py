"""Drives the simulator with MultiSafepay's official Python SDK (PyPI `multisafepay`), changing
nothing but the base URL. Run by tests/simulator/sdk.rs; argv: base_url api_key order_id
notification_body_file auth_header. Prints one line per check; exits non-zero on the first failure."""

import os
import sys

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

with open(body_file, encoding="utf-8") as f:
    body = f.read()
check("the SDK's webhook validator accepts the simulator's notification", Webhook.validate(body, auth, api_key, 600))
check("and refuses it for another key", not Webhook.validate(body, auth, "another-key", 600))
