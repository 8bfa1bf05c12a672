#!/usr/bin/env python3
"""Places the reminder call of app.py: CreateSipMediaApplicationCall with boto3.

    python3 call.py --endpoint-url http://127.0.0.1:8080 --app click-to-call \\
        --from +12065550100 --to +14255550142 [--time "3 pm tomorrow"] [--customer Sam]

Credentials are the runtime's ([api] in sma.toml; the development pair by default). Prints
the call's TransactionId; UpdateSipMediaApplicationCall takes it to steer the live call.
"""

import argparse

import boto3
from botocore.config import Config

DEV_KEY = "AKIASMADEVELOPMENT01"
DEV_SECRET = "sma/dev/secret/key/do/not/use/in/production"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint-url", default="http://127.0.0.1:8080")
    parser.add_argument("--app", required=True, help="the SIP media application's id")
    parser.add_argument("--from", dest="from_number", required=True,
                        help="a number of this account, shown to the customer")
    parser.add_argument("--to", required=True, help="the customer's number")
    parser.add_argument("--time", default="your appointment at 3 pm tomorrow")
    parser.add_argument("--customer", default="Sam")
    parser.add_argument("--key", default=DEV_KEY)
    parser.add_argument("--secret", default=DEV_SECRET)
    args = parser.parse_args()
    voice = boto3.client("chime-sdk-voice", region_name="us-east-1",
                         endpoint_url=args.endpoint_url, aws_access_key_id=args.key,
                         aws_secret_access_key=args.secret,
                         config=Config(retries={"max_attempts": 1}))
    reply = voice.create_sip_media_application_call(
        SipMediaApplicationId=args.app, FromPhoneNumber=args.from_number,
        ToPhoneNumber=args.to, SipHeaders={"X-Campaign": "reminders"},
        ArgumentsMap={"appointment": args.time, "customer": args.customer})
    print(reply["SipMediaApplicationCall"]["TransactionId"])


if __name__ == "__main__":
    main()
