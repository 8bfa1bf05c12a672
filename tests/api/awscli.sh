#!/usr/bin/env bash
# The `aws` CLI against `sma serve`: aws --endpoint-url URL chime-sdk-voice ...
# Usage: awscli.sh URL KEY SECRET ENDPOINT (AWS_CLI: the aws program to run).
set -euo pipefail
url=$1 endpoint=$4
export AWS_ACCESS_KEY_ID=$2 AWS_SECRET_ACCESS_KEY=$3 AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_MAX_ATTEMPTS=1
aws=${AWS_CLI:-aws}
voice() { "$aws" --endpoint-url "$url" --output json chime-sdk-voice "$@"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

[ "$(voice list-available-voice-connector-regions | field '["VoiceConnectorRegions"][0]')" = us-east-1 ]
id=$(voice create-sip-media-application --aws-region us-east-1 --name cli-app \
  --endpoints "LambdaArn=$endpoint" | field '["SipMediaApplication"]["SipMediaApplicationId"]')
[ "$(voice get-sip-media-application --sip-media-application-id "$id" \
  | field '["SipMediaApplication"]["Name"]')" = cli-app ]
[ "$(voice list-sip-media-applications | field '["SipMediaApplications"][0]["SipMediaApplicationId"]')" = "$id" ]
voice create-phone-number-order --product-type SipMediaApplicationDialIn \
  --e164-phone-numbers +12065550177 >/dev/null
rule=$(voice create-sip-rule --name cli-rule --trigger-type ToPhoneNumber \
  --trigger-value +12065550177 --target-applications "SipMediaApplicationId=$id,Priority=1" \
  | field '["SipRule"]["SipRuleId"]')
# The CLI reports a refused request with the service's error code and exits non-zero.
if out=$(voice delete-sip-rule --sip-rule-id "$rule" 2>&1); then
  echo "deleting an enabled rule succeeded" >&2; exit 1
fi
grep -q ConflictException <<<"$out" || { echo "unexpected error: $out" >&2; exit 1; }
voice update-sip-rule --sip-rule-id "$rule" --name cli-rule --disabled >/dev/null
voice delete-sip-rule --sip-rule-id "$rule"
voice delete-sip-media-application --sip-media-application-id "$id"
[ "$(voice list-sip-media-applications | field '["SipMediaApplications"]')" = "[]" ]
echo ok
