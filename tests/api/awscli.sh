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

# chime-sdk-meetings: every operation sma implements.
meetings() { "$aws" --endpoint-url "$url" --output json chime-sdk-meetings "$@"; }
meeting=$(meetings create-meeting --client-request-token cli-1 --media-region us-east-1 \
  --external-meeting-id cli-meeting --tags Key=via,Value=cli | field '["Meeting"]["MeetingId"]')
arn=$(meetings get-meeting --meeting-id "$meeting" | field '["Meeting"]["MeetingArn"]')
attendee=$(meetings create-attendee --meeting-id "$meeting" --external-user-id cli-user \
  | field '["Attendee"]["AttendeeId"]')
[ "$(meetings get-attendee --meeting-id "$meeting" --attendee-id "$attendee" \
  | field '["Attendee"]["ExternalUserId"]')" = cli-user ]
[ "$(meetings batch-create-attendee --meeting-id "$meeting" \
  --attendees ExternalUserId=cli-2 ExternalUserId=cli-3 | field '["Attendees"].__len__()')" = 2 ]
[ "$(meetings list-attendees --meeting-id "$meeting" | field '["Attendees"].__len__()')" = 3 ]
[ "$(meetings update-attendee-capabilities --meeting-id "$meeting" --attendee-id "$attendee" \
  --capabilities Audio=Receive,Video=None,Content=None | field '["Attendee"]["Capabilities"]["Audio"]')" = Receive ]
meetings batch-update-attendee-capabilities-except --meeting-id "$meeting" \
  --excluded-attendee-ids AttendeeId="$attendee" --capabilities Audio=Send,Video=None,Content=None
[ "$(meetings list-attendees --meeting-id "$meeting" \
  | field '["Attendees"]' | grep -o "'Send'" | wc -l)" = 2 ]
meetings tag-resource --resource-arn "$arn" --tags Key=floor,Value=3
meetings untag-resource --resource-arn "$arn" --tag-keys via
[ "$(meetings list-tags-for-resource --resource-arn "$arn" | field '["Tags"][0]["Key"]')" = floor ]
meetings delete-attendee --meeting-id "$meeting" --attendee-id "$attendee"
with=$(meetings create-meeting-with-attendees --client-request-token cli-2 --media-region us-east-1 \
  --external-meeting-id cli-two --attendees ExternalUserId=a1 ExternalUserId=a2 \
  | field '["Meeting"]["MeetingId"]')
meetings delete-meeting --meeting-id "$with"
meetings delete-meeting --meeting-id "$meeting"
if out=$(meetings get-meeting --meeting-id "$meeting" 2>&1); then
  echo "a deleted meeting was found" >&2; exit 1
fi
grep -q NotFoundException <<<"$out" || { echo "unexpected error: $out" >&2; exit 1; }
echo ok
