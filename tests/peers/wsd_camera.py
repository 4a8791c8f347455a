"""A WS-Discovery responder that answers like an ONVIF camera, for campuswatch's tests.
Standard library only, so it runs with the system's python3 inside a network namespace:
    python3 wsd_camera.py LOCAL_ADDR XADDR NAME HARDWARE

Joins 239.255.255.250 on the interface with LOCAL_ADDR and listens on port 3702, bound to
the group address, so it hears multicast probes only. Prints `READY` once joined. Each
Probe for dn:NetworkVideoTransmitter gets a ProbeMatches relating to the probe's
MessageID, with a fixed endpoint reference, XADDR, and NAME and HARDWARE as
percent-encoded scopes; every probe is logged to stderr as `PROBE <message id>`.
"""

import re
import socket
import struct
import sys
import uuid
from urllib.parse import quote

GROUP, PORT = "239.255.255.250", 3702
ENDPOINT = "urn:uuid:5f0c7e2a-7d3b-4c1e-9a51-3c2b1d0e9f01"


def answer(relates_to: str, xaddr: str, name: str, hardware: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" '
        'xmlns:dn="http://www.onvif.org/ver10/network/wsdl" '
        'xmlns:tds="http://www.onvif.org/ver10/device/wsdl">'
        "<SOAP-ENV:Header>"
        f"<wsa:MessageID>urn:uuid:{uuid.uuid4()}</wsa:MessageID>"
        f"<wsa:RelatesTo>{relates_to}</wsa:RelatesTo>"
        "<wsa:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>"
        "<wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action>"
        "</SOAP-ENV:Header><SOAP-ENV:Body><d:ProbeMatches><d:ProbeMatch>"
        f"<wsa:EndpointReference><wsa:Address>{ENDPOINT}</wsa:Address></wsa:EndpointReference>"
        "<d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>"
        "<d:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/Profile/Streaming "
        f"onvif://www.onvif.org/name/{quote(name)} onvif://www.onvif.org/hardware/{quote(hardware)}</d:Scopes>"
        f"<d:XAddrs>{xaddr}</d:XAddrs><d:MetadataVersion>1</d:MetadataVersion>"
        "</d:ProbeMatch></d:ProbeMatches></SOAP-ENV:Body></SOAP-ENV:Envelope>"
    ).encode("utf-8")


def main() -> None:
    local, xaddr, name, hardware = sys.argv[1:5]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((GROUP, PORT))
    membership = struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton(local))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    print("READY", flush=True)
    while True:
        data, sender = sock.recvfrom(65535)
        text = data.decode("utf-8", "replace")
        if not re.search(r"<(\w+:)?Probe[\s>]", text) or "NetworkVideoTransmitter" not in text:
            continue
        found = re.search(r"<(?:\w+:)?MessageID[^>]*>\s*([^<]+?)\s*</", text)
        if not found:
            continue
        print(f"PROBE {found.group(1)}", file=sys.stderr, flush=True)
        sock.sendto(answer(found.group(1), xaddr, name, hardware), sender)


main()
