// A handler in the style of those written for the hosted service in Node.js (our own code):
// templates with empty CallId values, numbers and booleans as strings, enumerations in
// other cases, a PlaybackTerminators string, members the contract does not have, and an
// undefined answer for events it does not handle (after a failure too).

const welcome = {
  Type: "Speak",
  Parameters: {
    CallId: "",
    Text: "<speak>Welcome to the announcement line.</speak>",
    TextType: "SSML",
    Engine: "Standard",
    VoiceId: "Joanna",
    LanguageCode: null,
  },
};

exports.handler = async (event, context) => {
  console.log(`event ${event.InvocationEventType}`);
  switch (event.InvocationEventType) {
    case "NEW_INBOUND_CALL":
      return {
        SchemaVersion: "1.0",
        Actions: [
          { Type: "VoiceFocus", Parameters: { Enable: "True", CallId: "" } },
          welcome,
          { Type: "Pause", Parameters: { DurationInMilliseconds: "300", ParticipantTag: " LEG-A" } },
          {
            Type: "PlayAudio",
            Parameters: {
              CallId: "",
              Repeat: "1",
              PlaybackTerminators: "#",
              AudioSource: { Type: "s3", BucketName: "prompts", Key: "not-uploaded.wav" },
              Description: "the announcement, not uploaded yet",
            },
          },
        ],
        TransactionAttributes: { step: "announcement" },
      };
    default:
      // ACTION_FAILED (the missing announcement), HANGUP: nothing to add.
      return undefined;
  }
};
