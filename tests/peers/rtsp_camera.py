"""An RTSP camera for campuswatch's tests: GStreamer's RTSP server streaming live H.264.

Binds port 0 (or --port) on 127.0.0.1 (or --host), prints `PORT <n>` on stdout, then
serves until killed:
    /usr/bin/python3 rtsp_camera.py [--host ADDR] [--port P] [--fps 15] [--mounts N] [--auth basic|digest USER PASSWORD]

The stream is mounted at /cam1 (and /cam2 … /camN with --mounts N: many cameras behind
one server) and offered over TCP-interleaved and UDP transports.
Run it with the system Python, which has the GObject bindings (`python3-gi`).
"""

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--mounts", type=int, default=1)
    # A fixed port lets a camera that was killed come back at the same address.
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--auth", nargs=3, metavar=("METHOD", "USER", "PASSWORD"))
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        "( videotestsrc is-live=true "
        f"! video/x-raw,width=640,height=360,framerate={args.fps}/1 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.fps} "
        "! video/x-h264,profile=baseline "
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    # A pipeline per session: a shared one answers 503 while a closed session's
    # pipeline is still being torn down, which would make tests depend on timing.
    factory.set_shared(False)

    if args.auth:
        method, user, password = args.auth
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", user)
        if method == "basic":
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        elif method == "digest":
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
            auth.add_digest(user, password, token)
        else:
            sys.exit(f"unknown auth method {method!r}: basic or digest")
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role(user, "media.factory.access", True)
        permissions.add_permission_for_role(user, "media.factory.construct", True)
        factory.set_permissions(permissions)

    for n in range(1, args.mounts + 1):
        server.get_mount_points().add_factory(f"/cam{n}", factory)
    if server.attach(None) == 0:
        sys.exit("cannot start the RTSP server")
    print(f"PORT {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
