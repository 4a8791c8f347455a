"""A simulated alarm panel for campuswatch's tests, built on pysiaalarm: sends one
encrypted DC-09 supervision frame (`*NULL`) made with pysiaalarm's own encryption and
CRC, then checks the answer with pysiaalarm too. Run with the venv .ci/run makes:
    python dc09_panel.py HOST PORT ACCOUNT KEY [CLOCK_SKEW_SECONDS]

KEY is taken as pysiaalarm takes it: 16, 24 or 32 characters whose bytes are the key.
Prints one line and exits 0 once an answer was read:
    ANSWER *ACK opened <time>   an encrypted ACK that pysiaalarm decrypts, parses and
                                finds within its time window
    ANSWER *ACK unreadable      an encrypted ACK that does not decrypt with KEY
    ANSWER <id>                 any other answer (NAK, DUH, ACK in clear)
Exits 1 when the answer is not a frame (bad CRC or length) or none came.
"""

import socket
import sys
from datetime import datetime, timedelta, timezone

from pysiaalarm import SIAAccount
from pysiaalarm.errors import EventFormatError
from pysiaalarm.event import SIAEvent


def main() -> int:
    host, port, account, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    skew = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    acc = SIAAccount(account, key)
    sent_at = datetime.now(timezone.utc) + timedelta(seconds=skew)
    sealed = SIAEvent(sia_account=acc).encrypt_content("|]" + sent_at.strftime("_%H:%M:%S,%m-%d-%Y"))
    body = f'"*NULL"0001R0L0#{account}[{sealed}'
    frame = f"\n{SIAEvent._crc_calc(body)}{len(body):04X}{body}\r".encode("ascii")

    answer = b""
    with socket.create_connection((host, port), timeout=5) as conn:
        conn.sendall(frame)
        while not answer.endswith(b"\r"):
            chunk = conn.recv(1024)
            if not chunk:
                break
            answer += chunk
    line = answer.decode("ascii", "replace").strip()
    crc, length, body = line[:4], line[4:8], line[8:]
    if len(line) < 10 or SIAEvent._crc_calc(body) != crc or int(length, 16) != len(body):
        print(f"ANSWER ? not a frame: {line!r}", flush=True)
        return 1
    kind = body[1 : body.index('"', 1)]
    if kind != "*ACK":
        print(f"ANSWER {kind}", flush=True)
        return 0
    try:
        ack = SIAEvent(
            full_message=body,
            msg_crc=crc,
            encrypted=True,
            message_type="NULL",
            account=account,
            sequence=body[6:10],
            encrypted_content=body[body.index("[") + 1 :],
            sia_account=acc,
        )
    except EventFormatError:
        print("ANSWER *ACK unreadable", flush=True)
        return 0
    if ack.timestamp is None or not ack.valid_timestamp or body[6:10] != "0001":
        print(f"ANSWER *ACK unreadable (time {ack.timestamp}, sequence {body[6:10]})", flush=True)
        return 0
    print(f"ANSWER *ACK opened {ack.timestamp.isoformat()}", flush=True)
    return 0


sys.exit(main())
