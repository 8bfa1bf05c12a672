// hello-js: the IVR menu flow as a JavaScript component.
//
// The runtime calls handleEvent with the invocation event JSON and takes the returned string
// as the response JSON — the same documents a webhook exchanges. Build with `npm run build`.
import { log } from 'sma:handler/log@0.1.0';

const MENU = 'Hello from JavaScript. For sales, press 1. For support, press 2.';
const RETRY = 'Sorry, that is not a valid choice.';
const GOODBYE = 'We did not receive a valid choice. Goodbye.';
const DEPARTMENTS = { '1': 'sales', '2': 'support' };

function speak(callId, text) {
  return { Type: 'Speak', Parameters: { CallId: callId, Text: text } };
}

function hangup(callId) {
  return { Type: 'Hangup', Parameters: { CallId: callId, SipResponseCode: '0' } };
}

function decide(event) {
  const legA = event.CallDetails.Participants.find((p) => p.ParticipantTag === 'LEG-A');
  const callId = (event.ActionData && event.ActionData.Parameters && event.ActionData.Parameters.CallId) || legA.CallId;
  const actionType = event.ActionData && event.ActionData.Type;
  switch (event.InvocationEventType) {
    case 'NEW_INBOUND_CALL':
      log('info', `new call from ${legA.From}`);
      return {
        Actions: [{
          Type: 'SpeakAndGetDigits',
          Parameters: {
            CallId: callId,
            SpeechParameters: { Text: MENU },
            FailureSpeechParameters: { Text: RETRY },
            MinNumberOfDigits: 1,
            MaxNumberOfDigits: 1,
            InputDigitsRegex: '^[12]$',
            Repeat: 3,
            RepeatDurationInMilliseconds: 5000,
          },
        }],
        TransactionAttributes: { menu: 'main' },
      };
    case 'ACTION_SUCCESSFUL':
      if (actionType === 'SpeakAndGetDigits') {
        const department = DEPARTMENTS[event.ActionData.ReceivedDigits];
        if (department) {
          return {
            Actions: [speak(callId, `Connecting you to ${department}. Goodbye.`), hangup(callId)],
            TransactionAttributes: { menu: 'done', department },
          };
        }
        return { Actions: [speak(callId, GOODBYE), hangup(callId)], TransactionAttributes: { menu: 'done' } };
      }
      return { Actions: [] };
    case 'ACTION_FAILED':
      if (actionType === 'SpeakAndGetDigits') {
        return { Actions: [speak(callId, GOODBYE), hangup(callId)], TransactionAttributes: { menu: 'done' } };
      }
      return { Actions: [hangup(callId)] };
    case 'INVALID_LAMBDA_RESPONSE':
      log('warn', `response refused: ${event.ErrorType}: ${event.ErrorMessage}`);
      return { Actions: [hangup(callId)] };
    default:
      return { Actions: [] };
  }
}

export function handleEvent(eventJson) {
  const event = JSON.parse(eventJson);
  const response = decide(event);
  return JSON.stringify({ SchemaVersion: event.SchemaVersion, ...response });
}
