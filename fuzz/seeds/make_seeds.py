#!/usr/bin/env python3
"""Writes the hand-made seed inputs of each fuzz target into corpus/<target>/, from the
project's own fixtures: the payload samples of docs/PROTOCOL.md, the registry's demo file
and its tests' cases, the SIP, DC-09, RTSP and ONVIF answers the agent's tests use, the
GB/T 28181 MANSCDP bodies of the server's tests.
Run once when a target is added (then keep only its own folder: the others were minimised);
libFuzzer grows the corpus from these."""

import hashlib
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT / "fuzz" / "corpus"


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


# --- protocol: topic line, then payload -------------------------------------------------
doc = (ROOT / "docs" / "PROTOCOL.md").read_text()
blocks = re.findall(r"```json\n(.*?)```", doc, re.S)
kinds = {"agent_version": "birth", "reason\": \"connection_lost": "death", "\"seq\"": "heartbeat",
         "\"from\"": "event"}
for b in blocks:
    b = b.strip()
    if not b.startswith("{"):
        continue
    if "digest_mismatch" in b:
        put("protocol", "cw/v1/150102/150102-K-0001/cmd/rebirth\n" + b)
        continue
    for needle, kind in kinds.items():
        if needle in b:
            put("protocol", f"cw/v1/150102/150102-K-0001/{kind}\n" + b)
put("protocol", 'cw/v1/150102/c-1/event\n{"v":4,"campus":"c-1","region":"150102","id":7,"epoch":3,'
    '"at":"2026-11-29T08:00:00Z","device":"cam-1","kind":"camera","from":"up","to":"down",'
    '"cause":"HTTP 404, expected 200","cause_code":{"code":"http.status","params":{"got":404,"expected":"200"}},'
    '"info":{"manufacturer":"HIKVISION","model":"DS-2CD2143G2-I"}}')
put("protocol", 'cw/v1/150102/c-1/birth\n{"v":3,"campus":"c-1","region":"150102","epoch":1,'
    '"at":"2026-11-29T08:00:00.123456789Z","agent_version":"0.1.0","config_digest":"x",'
    '"heartbeat_interval_ms":5000,"last_event_id":0,"devices":[],"dropped_events":4}')

# --- registry_csv -----------------------------------------------------------------------
demo = (ROOT / "config" / "demo-registry.csv").read_text().splitlines(keepends=True)
put("registry_csv", "".join(demo[:6]))
put("registry_csv", "\ufeff" + "".join(demo[:3]).replace("\n", "\r\n"))
head = "id,name,region,school_type,expected_alarms,expected_cameras\n"
for rows in [
    "150102-K-0001,新城区第一幼儿园,150102,幼儿园,1,8\n150102-S-0001,\"a, \"\"b\"\" c\",150102,secondary,2,40\n",
    "150102-K-0001,'=HYPERLINK(1),150102,kindergarten,1,8\n\n,,,,,\n150102-P-0002,x,150100,primary,1,2\n",
    "150102-K-0001,\"two\nlines\",150102,other,1,8\n150102-K-0001,dup,150102,other,1,1025\n",
    "150102-K-0001,x,150102,kindergarten,1\n150102-K-0002,x,150102,kindergarten,1,2,3\n",
]:
    put("registry_csv", head + rows)
put("registry_csv", "name,id,extra,region\nx,y,z,150102\n")
put("registry_csv", "150102-K-0001,x,150102,kindergarten,1,8\n")

# --- sip ---------------------------------------------------------------------------------
call = "a84b4c76e66710@campuswatch"
echoed = (f"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport=5060\r\nFrom: <sip:campuswatch@10.0.0.1>;tag=1\r\n"
          f"To: <sip:10.0.0.9>;tag=9\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\n")
for status in ["200 OK", "100 Trying", "401 Unauthorized", "404 Not Found", "603 Decline"]:
    put("sip", f"SIP/2.0 {status}\r\n{echoed}Content-Length: 0\r\n\r\n")
put("sip", f"SIP/2.0 200 OK\r\ni: {call}\r\nl: 5\r\n\r\nhello")
put("sip", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

# --- dc09: frames with CRC-16/ARC and length ----------------------------------------------
def crc16_arc(data):
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def frame(body):
    b = body.encode()
    return b"\n" + f"{crc16_arc(b):04X}0{len(b):03X}".encode() + b + b"\r"


REFERENCE_NULL = b"\n13E30055\"*NULL\"0007R0L0#1234[820719EA502D923C3C40D7B735FA8FD8C81BBBA17EC6A63509F2259CC199E121\r"
REFERENCE_ACK = b"\n9D840054\"*ACK\"0007R0L0#1234[9E01FE533302359D980357CB5AC031834B950569B6EBB76E3E8A98B2D1E5CB07\r"
CAPTURED = b"\n31FD0018\"NULL\"0000R0L0#XTRM189[]\r"
answers = [
    REFERENCE_ACK,
    frame('"ACK"0007R0L0#1234[]_08:01:02,11-29-2026'),
    frame('"NAK"0000R0L0A0[]_08:01:02,11-29-2026'),
    frame('"NAK"0000L0R0A0[]_08:01:02,11-29-2026'),
    frame('"DUH"0007R0L0#1234[]'),
    frame('"ACK"0008R0L0#1234[]'),
]
for a in answers:
    put("dc09_answer", a)
    put("dc09_answer", a[9:-1])  # the body: the target frames it with a right CRC
panels = [
    CAPTURED,
    REFERENCE_NULL,
    frame('"SIA-DCS"0042L0#5678[#5678|NBA1]_08:01:02,11-29-2026'),
    frame('"ADM-CID"0043R1F2L0#5678[#5678|1130 01 015]'),
    CAPTURED + b"\n" + REFERENCE_NULL + frame('"NULL"0001L0#1234[]'),
]
for p in panels:
    put("dc09_listen", p)
    if p.count(b"\r") == 1:
        put("dc09_listen", p[9:-1])

# --- rtsp: a camera's answers to DESCRIBE ------------------------------------------------
sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=Session\r\nt=0 0\r\na=control:*\r\n"
       "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
       "a=fmtp:96 packetization-mode=1;profile-level-id=42001f;sprop-parameter-sets=Z0IAH5WoFAFuQA==,aM48gA==\r\n"
       "a=control:trackID=1\r\n")
base = "rtsp://127.0.0.1:554/Streaming/Channels/101/"


def describe_ok(cseq, body=sdp):
    return (f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Base: {base}\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}")


put("rtsp", describe_ok(1))
put("rtsp", describe_ok(1, sdp.replace("m=video 0 RTP/AVP 96", "m=audio 0 RTP/AVP 0").replace("H264/90000", "PCMU/8000")))
put("rtsp", 'RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Digest realm="IP Camera", nonce="0123456789abcdef", stale="FALSE"\r\n\r\n'
    + describe_ok(2))
put("rtsp", 'RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Basic realm="cam"\r\n\r\n' + describe_ok(2))
for status in ["404 Not Found", "403 Forbidden", "453 Not Enough Bandwidth", "503 Service Unavailable", "500 Internal Server Error"]:
    put("rtsp", f"RTSP/1.0 {status}\r\nCSeq: 1\r\n\r\n")
put("rtsp", "HTTP/1.1 400 Bad Request\r\n\r\n")

# --- onvif: SOAP answers and WS-Discovery matches ----------------------------------------
def envelope(body):
    return ('<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" '
            'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema">'
            f"<SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>")


put("onvif", envelope("<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType>"
    "<tt:UTCDateTime><tt:Time><tt:Hour>8</tt:Hour><tt:Minute>1</tt:Minute><tt:Second>2</tt:Second></tt:Time>"
    "<tt:Date><tt:Year>2026</tt:Year><tt:Month>11</tt:Month><tt:Day>29</tt:Day></tt:Date></tt:UTCDateTime>"
    "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"))
put("onvif", envelope("<tds:GetDeviceInformationResponse><tds:Manufacturer>HIKVISION</tds:Manufacturer>"
    "<tds:Model>DS-2CD2143G2-I</tds:Model><tds:FirmwareVersion>V5.7.3 build 220112</tds:FirmwareVersion>"
    "<tds:SerialNumber>DS-2CD2143G2-I20220101AAWRG12345678</tds:SerialNumber>"
    "<tds:HardwareId>88</tds:HardwareId></tds:GetDeviceInformationResponse>"))
put("onvif", envelope('<SOAP-ENV:Fault><SOAP-ENV:Code><SOAP-ENV:Value>SOAP-ENV:Sender</SOAP-ENV:Value>'
    '<SOAP-ENV:Subcode><SOAP-ENV:Value>ter:NotAuthorized</SOAP-ENV:Value></SOAP-ENV:Subcode></SOAP-ENV:Code>'
    '<SOAP-ENV:Reason><SOAP-ENV:Text xml:lang="en">Sender not Authorized</SOAP-ENV:Text></SOAP-ENV:Reason></SOAP-ENV:Fault>'))
put("onvif", '<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery">'
    '<s:Header><a:MessageID>urn:uuid:1</a:MessageID>'
    '<a:RelatesTo>urn:uuid:0b1f0f4e-52d4-4f7e-9d55-1c2ad0c2a4b7</a:RelatesTo></s:Header>'
    '<s:Body><d:ProbeMatches><d:ProbeMatch><a:EndpointReference><a:Address>urn:uuid:cam-1</a:Address></a:EndpointReference>'
    '<d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>'
    '<d:Scopes>onvif://www.onvif.org/name/Gate%20Cam onvif://www.onvif.org/hardware/DS-2CD2143G2-I</d:Scopes>'
    '<d:XAddrs>http://10.0.0.4/onvif/device_service</d:XAddrs><d:MetadataVersion>1</d:MetadataVersion>'
    '</d:ProbeMatch></d:ProbeMatches></s:Body></s:Envelope>')
put("onvif", '<ProbeMatches xmlns="http://schemas.xmlsoap.org/ws/2005/04/discovery"><ProbeMatch>'
    '<XAddrs>http://10.0.0.5/onvif/device_service</XAddrs><Scopes>onvif://www.onvif.org/name/A&amp;B&#x4E2D;</Scopes>'
    '</ProbeMatch></ProbeMatches>')

# --- manscdp: GB/T 28181 bodies, the server's test samples, in GB2312 as devices send them
for sample in sorted((ROOT / "server" / "tests" / "fixtures" / "manscdp").glob("*.xml")):
    put("manscdp", sample.read_text().replace("\n", "\r\n").encode("gb2312"))
put("manscdp", '<Response><CmdType>DeviceInfo</CmdType><SN>3</SN><DeviceID>34020000001180000001</DeviceID>'
    '<DeviceName>东门 NVR</DeviceName><Result>OK</Result></Response>')
put("manscdp", '<?xml version="1.0" encoding="GB2312"?>\r\n<Query>\r\n<CmdType>Catalog</CmdType>\r\n'
    '<SN>1</SN>\r\n<DeviceID>34020000001180000001</DeviceID>\r\n</Query>\r\n')
