"""A reference SIA DC-09 alarm receiver for campuswatch's tests, from pysiaalarm.

Binds port 0 on 127.0.0.1 (or --host ADDR; TCP or UDP), prints `PORT <n>` on stdout, then
serves until killed, acknowledging frames of the accounts given. Run with the venv .ci/run
makes:
    python dc09_receiver.py tcp 1234 [more accounts...] [--key KEY] [--host ADDR]

With `--key`, every account is encrypted with KEY as pysiaalarm takes it: 16, 24 or 32
characters whose bytes are the AES-128, -192 or -256 key (campuswatch's `key` is the hex
of those bytes).
"""

import asyncio
import sys

from pysiaalarm import SIAAccount
from pysiaalarm.aio import CommunicationsProtocol, SIAClient


async def main() -> None:
    args = sys.argv[1:]
    key = None
    if "--key" in args:
        i = args.index("--key")
        key = args[i + 1]
        del args[i : i + 2]
    host = "127.0.0.1"
    if "--host" in args:
        i = args.index("--host")
        host = args[i + 1]
        del args[i : i + 2]
    protocol = {"tcp": CommunicationsProtocol.TCP, "udp": CommunicationsProtocol.UDP}[args[0]]
    accounts = [SIAAccount(a, key) for a in args[1:]]

    async def on_event(event) -> None:
        print(f"EVENT {event.code or ''} {event.account}", flush=True)

    client = SIAClient(host, 0, accounts, on_event, protocol=protocol)
    await client.async_start()
    if protocol == CommunicationsProtocol.TCP:
        port = client.server.sockets[0].getsockname()[1]
    else:
        port = client.transport.get_extra_info("sockname")[1]
    print(f"PORT {port}", flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
