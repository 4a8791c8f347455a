"""A reference SIA DC-09 alarm receiver for campuswatch's tests, from pysiaalarm.

Binds port 0 on 127.0.0.1 (TCP or UDP), prints `PORT <n>` on stdout, then serves until
killed, acknowledging frames of the accounts given. Run with the venv .ci/run makes:
    python dc09_receiver.py tcp 1234 [more accounts...]
"""

import asyncio
import sys

from pysiaalarm import SIAAccount
from pysiaalarm.aio import CommunicationsProtocol, SIAClient


async def main() -> None:
    protocol = {"tcp": CommunicationsProtocol.TCP, "udp": CommunicationsProtocol.UDP}[sys.argv[1]]
    accounts = [SIAAccount(a) for a in sys.argv[2:]]

    async def on_event(event) -> None:
        print(f"EVENT {event.code or ''} {event.account}", flush=True)

    client = SIAClient("127.0.0.1", 0, accounts, on_event, protocol=protocol)
    await client.async_start()
    if protocol == CommunicationsProtocol.TCP:
        port = client.server.sockets[0].getsockname()[1]
    else:
        port = client.transport.get_extra_info("sockname")[1]
    print(f"PORT {port}", flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
