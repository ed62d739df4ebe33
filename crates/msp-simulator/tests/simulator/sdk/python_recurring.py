"""Drives the simulator's token API with MultiSafepay's official Python SDK (`RecurringManager`),
changing nothing but the base URL. Run by tests/simulator/recurring.rs; argv: base_url api_key
customer_reference visa_token mastercard_token. Prints one line per check; exits non-zero on the
first failure."""

import os
import sys

os.environ["MSP_SDK_BUILD_PROFILE"] = "dev"
os.environ["MSP_SDK_ALLOW_CUSTOM_BASE_URL"] = "1"

import requests  # noqa: E402
from multisafepay.sdk import Sdk  # noqa: E402

base_url, api_key, reference, visa, mastercard = sys.argv[1:6]


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (": " + str(detail) if detail else ""))
    if not ok:
        sys.exit(1)


sdk = Sdk(api_key=api_key, is_production=False, base_url=base_url)
recurring = sdk.get_recurring_manager()

listed = recurring.get_list(reference).get_data()
codes = sorted((t.token, t.code) for t in listed or [])
check("get_list reads both tokens", codes == sorted([(visa, "VISA"), (mastercard, "MASTERCARD")]), codes)

token = recurring.get(visa, reference).get_data()
check("get reads one token", token is not None and token.token == visa and token.code == "VISA", token)
check("the token shows the card's expiry and a masked number",
      token.expiry_date == "3012" and token.display.endswith("1111") and "4111111111111111" not in token.display,
      token)

recurring.delete(reference, visa)
left = [t.token for t in recurring.get_list(reference).get_data() or []]
check("delete removes the token from the list", left == [mastercard], left)

try:
    recurring.get(visa, reference)
    check("a deleted token is not found", False, "no error")
except requests.HTTPError as e:
    check("a deleted token is not found", e.response.status_code == 410, e.response.status_code)

try:
    recurring.delete(reference, visa)
    check("deleting it again is refused", False, "no error")
except requests.HTTPError as e:
    body = e.response.json()
    check("deleting it again is refused", e.response.status_code == 410 and body.get("error_code") == 1000, body)
