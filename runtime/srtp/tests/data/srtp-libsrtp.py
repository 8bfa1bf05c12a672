"""Writes srtp-libsrtp.txt: packets protected by libsrtp 2 (through pylibsrtp 1.0, from PyPI),
the reference the SRTP tests hold sma's own implementation to. Per suite, five lines: the suite,
the master key and salt, an RTP packet (sequence 0xfffe), the next one after the sequence wrapped
(rollover counter 1), and an RTCP sender report. Run: python3 srtp-libsrtp.py > srtp-libsrtp.txt
"""
from pylibsrtp import Policy, Session
P = Policy
profiles = [("AesCm128HmacSha1_80", P.SRTP_PROFILE_AES128_CM_SHA1_80, 30),
            ("AesCm128HmacSha1_32", P.SRTP_PROFILE_AES128_CM_SHA1_32, 30),
            ("AeadAes128Gcm", P.SRTP_PROFILE_AEAD_AES_128_GCM, 28),
            ("AeadAes256Gcm", P.SRTP_PROFILE_AEAD_AES_256_GCM, 44)]
rtp = bytes.fromhex("8000fffe0000a0f0cafebabe") + bytes(range(160))[:160]
rtp2 = bytes.fromhex("80000001000a00f0cafebabe") + bytes((i + 100) % 256 for i in range(160))
rtcp = bytes.fromhex("80c80006cafebabe") + bytes(range(20))
for name, prof, n in profiles:
    key = bytes((i * 7 + 3) % 256 for i in range(n))
    s = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=prof))
    a = s.protect(rtp)
    b = s.protect(rtp2)  # seq wrapped: ROC 1
    c = s.protect_rtcp(rtcp)
    print(name, key.hex(), a.hex(), b.hex(), c.hex(), sep="\n")
