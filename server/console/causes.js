"use strict";
// Causes in the operator's language. Every cause the agent and the server write carries
// a stable code with parameters (docs/PROTOCOL.md §3.7) next to its English words; this
// table says each code in Chinese and English. A code it does not know, and a cause
// without a code (agents before schema version 4), shows the words as sent; so does the
// English console, whose words are the agent's own and name the failing step.

const CAUSES = {
  zh: {
    "tcp.refused": "连接被拒绝（该端口无服务）",
    "tcp.unreachable": "主机不可达（设备断电、断线或不在同一网络）",
    "tcp.network_unreachable": "网络不可达（请检查网关路由）",
    "tcp.timeout": "连接超时",
    "tcp.reset": "连接被设备重置",
    "tcp.address": "网关上没有该地址",
    "tcp.resolve": "无法解析主机名",
    "tcp.error": "连接出错",
    "probe.timeout": "{s} 秒内无应答",
    "http.status": "HTTP 状态码 {got}（应为 {expected}）",
    "http.body_mismatch": "应答内容中没有“{expected}”",
    "http.unauthorized": "HTTP 401 未授权：请核对抓图地址中的用户名和密码",
    "http.tls": "TLS 握手失败（自签名证书的设备请设置 insecure_tls）",
    "http.connect": "无法连接",
    "http.read": "读取应答出错",
    "http.request": "请求失败",
    "rtsp.unauthorized": "RTSP 401 未授权：请核对摄像机用户名和密码",
    "rtsp.forbidden": "RTSP 403 禁止访问：该用户无权查看此码流",
    "rtsp.not_found": "RTSP 404 未找到：请核对地址中的码流路径",
    "rtsp.bandwidth": "RTSP 453 带宽不足：摄像机的观看连接过多",
    "rtsp.transport": "RTSP 461 不支持该传输方式：请改用另一种",
    "rtsp.unavailable": "RTSP 503 服务不可用：摄像机忙或正在重启码流",
    "rtsp.status": "RTSP {status}（{step}）",
    "rtsp.credentials_needed": "摄像机要求用户名和密码",
    "rtsp.failed": "{step} 失败",
    "rtsp.no_answer": "{step} 在 {s} 秒内无应答：摄像机死机或过载",
    "rtsp.no_video": "该地址没有视频流：请核对码流路径",
    "rtsp.no_frames": "PLAY 后 {seconds} 秒内没有视频帧：编码器无输出",
    "rtsp.no_keyframe": "{seconds} 秒内没有关键帧：丢包或关键帧间隔过长",
    "rtsp.low_frame_rate": "帧率 {fps} 帧/秒，低于要求的 {min} 帧/秒",
    "rtsp.stream_ended": "摄像机中断了码流",
    "snapshot.too_large": "抓图大于 {mib} MiB，不是静态图片",
    "snapshot.not_jpeg": "抓图不是可用的 JPEG 图片",
    "onvif.fault": "ONVIF 服务返回错误",
    "onvif.unauthorized": "ONVIF 401 未授权：请核对 ONVIF 用户名和密码",
    "onvif.bad_answer": "ONVIF 应答无效",
    "onvif.clock_drift": "摄像机时钟偏差 {seconds} 秒（超过 {max} 秒）：请设置校时服务器",
    "dc09.nak": "接警中心拒收报文（NAK）：请核对网关时钟和用户号",
    "dc09.nak.encrypted": "接警中心拒收加密报文（NAK）：请核对 AES 密钥和网关时钟",
    "dc09.duh": "接警中心无法识别报文（DUH）：请核对用户号、前缀和接收机号",
    "dc09.wrong_sequence": "应答的报文序号为 {got}，不是 {expected}",
    "dc09.wrong_key": "接警中心的加密应答无法用本机 AES 密钥解开：两端密钥不一致",
    "dc09.clear_ack": "加密报文收到明文 ACK：接警中心该用户未启用加密",
    "dc09.key_needed": "接警中心以加密应答：请设置该用户的 AES 密钥",
    "dc09.unexpected_answer": "意外的应答 {got}（应为 ACK）",
    "dc09.bad_answer": "接警中心的应答不是有效的 DC-09 报文",
    "dc09.closed": "接警中心未应答即断开连接",
    "dc09.send": "发送报文失败",
    "dc09.read": "读取应答失败",
    "dc09.encrypt": "无法加密报文",
    "dc09.silent": "报警主机 {account} 已 {seconds} 秒未发巡检报文（窗口 {window} 秒）",
    "dc09.never_polled": "尚未收到报警主机 {account} 的巡检报文",
    "sip.closed": "设备未作 SIP 应答即断开连接",
    "sip.bad_answer": "设备的应答不是 SIP 应答",
    "gateway.socket": "网关无法打开网络套接字",
    "device.flapping": "频繁通断",
    "gateway.connection_lost": "网关连接中断",
    "gateway.shutdown": "监测程序已停止",
    "gateway.no_heartbeat": "{seconds} 秒未收到心跳",
    "campus.alarm_down": "{monitored} 台报警设备中 {down} 台中断；应有 {expected} 台，至少 {needed} 台在线才算联网",
    "campus.video_down": "{monitored} 路摄像机中 {down} 路中断；应有 {expected} 路，至少 {needed} 路在线才算联网",
    "link.flapping": "频繁通断",
    "gb.keepalive_missed": "{seconds} 秒未收到设备的保活消息（Keepalive）：设备掉线或上联中断",
    "gb.registration_expired": "注册已过期，设备未重新注册：请检查设备的平台参数和上联",
    "gb.unregistered": "设备已注销（Expires: 0），例如设备重启或平台参数被修改",
    "gb.alarm": "视频平台报警",
    "campus.platform_video_down": "视频平台上 {monitored} 路摄像机通道中 {down} 路离线；应有 {expected} 路，至少 {needed} 路在线才算联网",
    "gb-priority": "{priority}级警情", "gb-type": "报警类型 {type}",
    "gb-method-1": "电话报警", "gb-method-2": "设备报警", "gb-method-3": "短信报警",
    "gb-method-4": "GPS报警", "gb-method-5": "视频报警", "gb-method-6": "设备故障报警",
    "gb-method-7": "其他报警",
    "probe-failed": "{probe} 探测失败",
    "probe-degraded": "{probe} 探测发现异常",
    "flapping-note": "频繁通断（{flapping} 次状态变化）",
  },
  en: {
    "tcp.refused": "connection refused (nothing listens on that port)",
    "tcp.unreachable": "no route to host (device off, unplugged or on another network)",
    "tcp.network_unreachable": "network unreachable (check the gateway's routes)",
    "tcp.timeout": "timed out while connecting",
    "tcp.reset": "connection reset by the device",
    "tcp.address": "address not available on the gateway",
    "tcp.resolve": "cannot resolve the host name",
    "tcp.error": "connection error",
    "probe.timeout": "no answer within {s} s",
    "http.status": "HTTP status {got} (expected {expected})",
    "http.body_mismatch": "the answer does not contain “{expected}”",
    "http.unauthorized": "HTTP 401 Unauthorized: check the user and password in the snapshot URL",
    "http.tls": "TLS handshake failed (set insecure_tls for a self-signed device)",
    "http.connect": "cannot connect",
    "http.read": "error reading the answer",
    "http.request": "request failed",
    "rtsp.unauthorized": "RTSP 401 Unauthorized: check the camera's user and password",
    "rtsp.forbidden": "RTSP 403 Forbidden: this user may not view the stream",
    "rtsp.not_found": "RTSP 404 Not Found: check the stream path in the URL",
    "rtsp.bandwidth": "RTSP 453 Not Enough Bandwidth: the camera serves too many viewers",
    "rtsp.transport": "RTSP 461 Unsupported Transport: try the other transport",
    "rtsp.unavailable": "RTSP 503 Service Unavailable: the camera is busy or restarting its stream",
    "rtsp.status": "RTSP {status} in answer to {step}",
    "rtsp.credentials_needed": "the camera asks for a user and password",
    "rtsp.failed": "{step} failed",
    "rtsp.no_answer": "no answer to {step} within {s} s: the camera is hung or overloaded",
    "rtsp.no_video": "no video stream at this URL: check the stream path",
    "rtsp.no_frames": "no video frames within {seconds} s after PLAY: the encoder sends nothing",
    "rtsp.no_keyframe": "no keyframe within {seconds} s: lost packets or a long keyframe interval",
    "rtsp.low_frame_rate": "frame rate {fps} fps, below the required {min} fps",
    "rtsp.stream_ended": "the camera ended the stream",
    "snapshot.too_large": "the snapshot is larger than {mib} MiB: not a still image",
    "snapshot.not_jpeg": "the snapshot is not a usable JPEG",
    "onvif.fault": "the ONVIF service answered with a fault",
    "onvif.unauthorized": "ONVIF 401 Unauthorized: check the ONVIF user and password",
    "onvif.bad_answer": "the ONVIF answer is not valid",
    "onvif.clock_drift": "camera clock {seconds} s off (more than {max} s): set its time server",
    "dc09.nak": "the receiver refused the frame (NAK): check the gateway's clock and the account",
    "dc09.nak.encrypted": "the receiver refused the encrypted frame (NAK): check the AES key and the gateway's clock",
    "dc09.duh": "the receiver did not understand the frame (DUH): check account, prefix and receiver number",
    "dc09.wrong_sequence": "the answer is for frame {got}, not {expected}",
    "dc09.wrong_key": "the receiver's encrypted answer does not open with our AES key: the keys differ",
    "dc09.clear_ack": "an encrypted frame was answered with an ACK in clear: the centre has no key for this account",
    "dc09.key_needed": "the receiver answered encrypted: set the account's AES key",
    "dc09.unexpected_answer": "unexpected answer {got} instead of ACK",
    "dc09.bad_answer": "the receiver's answer is not a DC-09 frame",
    "dc09.closed": "the receiver closed the connection without answering",
    "dc09.send": "sending the frame failed",
    "dc09.read": "reading the answer failed",
    "dc09.encrypt": "cannot encrypt the frame",
    "dc09.silent": "no supervision frame from panel {account} for {seconds} s (window {window} s)",
    "dc09.never_polled": "no supervision frame from panel {account} yet",
    "sip.closed": "the device closed the connection without a SIP answer",
    "sip.bad_answer": "the device's answer is not a SIP answer",
    "gateway.socket": "the gateway cannot open a socket",
    "device.flapping": "flapping",
    "gateway.connection_lost": "connection lost",
    "gateway.shutdown": "the agent was shut down",
    "gateway.no_heartbeat": "no heartbeat for {seconds} s",
    "campus.alarm_down": "{down} of {monitored} alarm devices down; {needed} of {expected} expected must be up",
    "campus.video_down": "{down} of {monitored} cameras down; {needed} of {expected} expected must be up",
    "link.flapping": "flapping",
    "gb.keepalive_missed": "no keepalive from the device for {seconds} s: the device or its uplink is down",
    "gb.registration_expired": "its registration expired and it did not register again: check the device's platform settings and uplink",
    "gb.unregistered": "the device unregistered (Expires: 0), as on a restart or a change of its platform settings",
    "gb.alarm": "alarm from the video platform",
    "campus.platform_video_down": "{down} of {monitored} camera channels down on the video platform; {needed} of {expected} expected must be up",
    "gb-priority": "priority {priority}", "gb-type": "alarm type {type}",
    "gb-method-1": "telephone alarm", "gb-method-2": "device alarm", "gb-method-3": "SMS alarm",
    "gb-method-4": "GPS alarm", "gb-method-5": "video alarm", "gb-method-6": "device fault",
    "gb-method-7": "other alarm",
    "probe-failed": "{probe} probe failed",
    "probe-degraded": "{probe} probe found the device impaired",
    "flapping-note": "flapping ({flapping} state changes)",
  },
};

// Fills `{name}` from the code's parameters; `{s}` is `ms` in seconds.
function causeFill(text, params) {
  return text.replace(/\{(\w+)\}/g, (whole, name) => {
    if (name === "s" && params.ms != null) return String(Math.round(params.ms / 100) / 10);
    return params[name] == null ? whole : String(params[name]);
  });
}

// The cause of `item` (a device, gateway, alert or event with `cause` and `cause_code`)
// in the console's language, HTML-escaped; `fallback` when it has none.
function causeText(item, fallback) {
  const code = item && item.cause_code;
  const words = item && item.cause;
  if (!code) return words ? esc(words) : (fallback == null ? "" : fallback);
  if (code.code === "gb.alarm") return gbAlarmText(code.params || {}, words);
  // In English the words as sent are the most precise (they name the failing step).
  if (lang === "en" && words) return esc(words);
  const table = CAUSES[lang] || CAUSES.zh;
  const params = code.params || {};
  const [source, what] = [code.code.split(".")[0], code.code.split(".").slice(1).join(".")];
  let text = null;
  if (code.code === "dc09.nak" && params.encrypted) text = table["dc09.nak.encrypted"];
  else if (table[code.code]) text = causeFill(table[code.code], params);
  else if (what === "failed" || what === "degraded") text = causeFill(table["probe-" + what], { probe: source.toUpperCase() });
  if (text == null) return words ? esc(words) : esc(code.code);
  if (params.flapping != null && code.code !== "device.flapping") {
    text += (lang === "zh" ? "；" : "; ") + causeFill(table["flapping-note"], params);
  } else if (code.code === "device.flapping") {
    text = causeFill(table["flapping-note"], params);
  }
  // The words as sent stay one hover away: installers act on them.
  return words ? `<span title="${esc(words)}">${esc(text)}</span>` : esc(text);
}

// A GB/T 28181 Alarm notification, in either language: "alarm from the video platform:
// {the device's description} (priority, method, type)". The description is the device's
// own words (often Chinese), so it is shown as sent in both languages.
function gbAlarmText(params, words) {
  const table = CAUSES[lang] || CAUSES.zh;
  const details = [
    params.priority != null ? causeFill(table["gb-priority"], params) : null,
    params.method != null ? table["gb-method-" + params.method] || null : null,
    params.type != null ? causeFill(table["gb-type"], params) : null,
  ].filter(Boolean);
  const sep = lang === "zh" ? "：" : ": ";
  const more = details.length ? (lang === "zh" ? `（${details.join("，")}）` : ` (${details.join(", ")})`) : "";
  return esc(table["gb.alarm"] + (words ? sep + words : "") + more);
}
