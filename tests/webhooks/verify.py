"""Verifies webhook deliveries with the official Standard Webhooks library (PyPI `standardwebhooks`).

Reads JSON on stdin: {"secrets": ["whsec_..."], "deliveries": [{"headers": {...}, "body": "..."}]}.
Every delivery must verify with every secret given (each secret alone, as a receiver holding only that one
would). Prints one line per failure and exits 1 on any; prints "verified N" and exits 0 otherwise.
The timestamp tolerance of the library (5 minutes) applies, so deliveries must be checked soon after they came.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook

doc = json.load(sys.stdin)
failures = 0
checked = 0
for secret in doc["secrets"]:
    hook = Webhook(secret)
    for d in doc["deliveries"]:
        try:
            hook.verify(d["body"], d["headers"])
            checked += 1
        except Exception as e:  # the library raises WebhookVerificationError
            failures += 1
            print(f"delivery {d['headers'].get('webhook-id')} does not verify: {e}")
if failures or not checked:
    sys.exit(1)
print(f"verified {checked}")
