"""Enable / use / disable the add-on; server down; bad inputs. Reports facts for pytest."""
from __future__ import annotations

import socket
import tempfile
import threading
import time

from _common import MODULE, TimerCapture, bpy, install, parse, sub, write

args = parse()
facts: dict = {}


def registered():
    return {
        "types": sorted(n for n in dir(bpy.types) if n.startswith(("AGS_", "ALIGNGS_"))),
        "ops": sorted(dir(bpy.ops.aligngs)),
        "scene_prop": hasattr(bpy.types.Scene, "aligngs"),
        "enabled": MODULE in bpy.context.preferences.addons,
        "load_post": sorted(getattr(h, "__name__", "?") for h in bpy.app.handlers.load_post
                            if "aligngs" in getattr(h, "__module__", "")),
        "threads": sorted(t.name for t in threading.enumerate() if t.name.startswith("aligngs")),
    }


facts["before"] = registered()
install(args.zip)
facts["enabled"] = registered()
timers = TimerCapture()
session = sub("blender.actions")
runtime = sub("blender.runtime")
s = runtime.get_session()
prefs = bpy.context.preferences.addons[MODULE].preferences
scene = bpy.context.scene

# --- a bad image folder: readable reasons, no traceback, Reconstruct disabled
reasons = {}
scene.aligngs.image_dir = ""
reasons["none"] = session.reconstruct_block_reason(s, prefs, scene.aligngs)
scene.aligngs.image_dir = "/no/such/folder"
reasons["missing"] = session.reconstruct_block_reason(s, prefs, scene.aligngs)
empty = tempfile.mkdtemp()
open(f"{empty}/notes.md", "w").write("no images here")
scene.aligngs.image_dir = empty
reasons["no_images"] = session.reconstruct_block_reason(s, prefs, scene.aligngs)
reasons["poll"] = bpy.ops.aligngs.reconstruct.poll()
try:
    bpy.ops.aligngs.reconstruct()
    reasons["op_error"] = None
except RuntimeError as e:  # poll failed: Blender raises with our poll message
    reasons["op_error"] = str(e)
try:
    session.start_reconstruction(s, scene, prefs)
    reasons["start_error"] = None
except session.UserError as e:
    reasons["start_error"] = str(e)
facts["bad_folder"] = reasons

# --- address handling and online access
addr = {}
prefs.address = "  http://example.org:5555 "
addr["online_access"] = bool(bpy.app.online_access)
addr["remote_reason"] = session.reconstruct_block_reason(s, prefs, scene.aligngs)
prefs.address = "tcp://localhost:99999"
addr["bad_port"] = session.reconstruct_block_reason(s, prefs, scene.aligngs)
facts["address"] = addr

# --- CURVE keys from the preferences (key files as written by zmq.auth / backend.keys)
import zmq.auth  # noqa: E402

kdir = tempfile.mkdtemp()
srv_pub_file, _ = zmq.auth.create_certificates(kdir, "server")
_, cli_sec_file = zmq.auth.create_certificates(kdir, "client")
prefs.address = "localhost:5555"
prefs.use_curve = True
prefs.server_key_file = srv_pub_file
prefs.client_key_file = cli_sec_file
_, keys, _ = session.connection_settings(prefs)
srv_pub, _ = zmq.auth.load_certificate(srv_pub_file)
cli_pub, cli_sec = zmq.auth.load_certificate(cli_sec_file)
curve = {"match": (keys.server_public, keys.client_public, keys.client_secret)
         == (srv_pub.decode(), cli_pub.decode(), cli_sec.decode())}
prefs.client_key_file = srv_pub_file  # a public-only file where the key pair belongs
curve["public_only"] = session.reconstruct_block_reason(s, prefs, scene.aligngs)
prefs.client_key_file = ""
prefs.server_key_file = ""
prefs.server_public_key = "tooshort"
curve["bad_text"] = session.reconstruct_block_reason(s, prefs, scene.aligngs)
prefs.use_curve = False
facts["curve"] = curve

# --- server down: a free loopback port nobody listens on
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
port = sock.getsockname()[1]
sock.close()
prefs.address = f" tcp://127.0.0.1:{port} "
prefs.timeout_s = 1.0
t0 = time.time()
res = bpy.ops.aligngs.test_connection()
ok = timers.pump(until=lambda: s.status == "error", timeout=15)
facts["server_down"] = {"op": list(res), "status": s.status, "text": s.status_text, "reached": ok,
                        "seconds": time.time() - t0, "reports": s.reports[-3:],
                        "timer_stopped": timers.pump(until=None, timeout=5)}
# a Reconstruct against the dead server fails readably too
folder = tempfile.mkdtemp()
from addon_testlib import make_image_folder  # noqa: E402
from pathlib import Path  # noqa: E402

make_image_folder(Path(folder), 3)
scene.aligngs.image_dir = folder
facts["reason_with_images"] = session.reconstruct_block_reason(s, prefs, scene.aligngs)
res = bpy.ops.aligngs.reconstruct()
ok = timers.pump(until=lambda: s.job.phase == "failed", timeout=20)
facts["reconstruct_down"] = {"op": list(res), "phase": s.job.phase, "error": s.job.error, "reached": ok}
facts["threads_running"] = sorted(t.name for t in threading.enumerate() if t.name.startswith("aligngs"))

# --- disable: nothing left behind
import addon_utils  # noqa: E402

addon_utils.disable(MODULE, default_set=True)
time.sleep(0.5)
facts["disabled"] = registered()
facts["session_after"] = runtime._session is None
# enable + disable again (no leftovers, no errors on a second cycle)
addon_utils.enable(MODULE, default_set=True)
facts["reenabled"] = registered()
addon_utils.disable(MODULE, default_set=True)
facts["disabled_again"] = registered()
timers.restore()
write(args.out, facts)
