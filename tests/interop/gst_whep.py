#!/usr/bin/python3
"""Watches a room over WHEP with GStreamer's webrtcbin and decodes its video.

Usage: gst_whep.py <whep url> [--codec H265] [--frames N] [--timeout SECONDS]

Offers one receive-only video m-line for the codec (all ICE candidates in the offer, no trickle), decodes
with GStreamer (rtph265depay ! h265parse ! avdec_h265 for H265; VP8, VP9 and H264 likewise) and prints one
JSON line: {"frames": ..., "width": ..., "height": ..., "status": <POST status>, "error": <message or null>}.
Exits 0 when at least N frames were decoded. Needs python3-gst-1.0 and gir1.2-gst-plugins-bad-1.0.
"""

import argparse
import json
import sys
import threading
import urllib.error
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

DECODERS = {
    "H265": "rtph265depay ! h265parse ! avdec_h265",
    "H264": "rtph264depay ! h264parse ! avdec_h264",
    "VP8": "rtpvp8depay ! vp8dec",
    "VP9": "rtpvp9depay ! vp9dec",
}


def post(url, sdp):
    request = urllib.request.Request(
        url, data=sdp.encode(), method="POST", headers={"Content-Type": "application/sdp"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url")
    parser.add_argument("--codec", default="H265", choices=sorted(DECODERS))
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()

    Gst.init(None)
    result = {"frames": 0, "width": 0, "height": 0, "status": None, "error": None}
    loop = GLib.MainLoop()
    pipeline = Gst.Pipeline.new("viewer")
    webrtc = Gst.ElementFactory.make("webrtcbin", "recv")
    webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
    pipeline.add(webrtc)
    caps = Gst.Caps.from_string(
        f"application/x-rtp,media=video,encoding-name={args.codec},clock-rate=90000,payload=96"
    )
    webrtc.emit("add-transceiver", GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY, caps)
    candidates = []

    def fail(message):
        result["error"] = message
        GLib.idle_add(loop.quit)

    def on_frame(pad, info):
        result["frames"] += 1
        if result["width"] == 0:
            structure = pad.get_current_caps().get_structure(0)
            result["width"] = structure.get_value("width")
            result["height"] = structure.get_value("height")
        if result["frames"] >= args.frames:
            GLib.idle_add(loop.quit)
        return Gst.PadProbeReturn.OK

    def on_pad(_, pad):
        if pad.direction != Gst.PadDirection.SRC:
            return
        decode = Gst.parse_bin_from_description(f"queue ! {DECODERS[args.codec]} ! fakesink name=sink", True)
        pipeline.add(decode)
        decode.sync_state_with_parent()
        pad.link(decode.get_static_pad("sink"))
        decode.get_by_name("sink").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, on_frame)

    def on_candidate(_, mline, candidate):
        candidates.append(candidate)

    def send_offer():
        offer = webrtc.get_property("local-description").sdp.as_text()
        lines = [l for l in offer.split("\r\n") if l]
        lines += [f"a={c}" for c in candidates] + ["a=end-of-candidates"]
        status, text = post(args.url, "\r\n".join(lines) + "\r\n")
        result["status"] = status
        if status != 201:
            return fail(f"POST answered {status}: {text.strip()}")
        _, sdp = GstSdp.SDPMessage.new_from_text(text)
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp)
        webrtc.emit("set-remote-description", answer, Gst.Promise.new())

    def on_gathering(element, _):
        if element.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            # Off the streaming thread: the POST blocks.
            threading.Thread(target=lambda: GLib.idle_add(send_offer), daemon=True).start()

    webrtc.connect("pad-added", on_pad)
    webrtc.connect("on-ice-candidate", on_candidate)
    webrtc.connect("notify::ice-gathering-state", on_gathering)
    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message::error", lambda _, m: fail(f"GStreamer: {m.parse_error()[0].message}"))
    pipeline.set_state(Gst.State.PLAYING)
    promise = Gst.Promise.new()
    webrtc.emit("create-offer", None, promise)
    promise.wait()
    # Keep the reply referenced while the offer is used: a temporary would free the SDP under it.
    reply = promise.get_reply()
    offer = reply["offer"]
    webrtc.emit("set-local-description", offer, Gst.Promise.new())

    def timeout():
        if result["error"] is None:
            result["error"] = f"only {result['frames']} frames decoded in {args.timeout} s"
        loop.quit()

    GLib.timeout_add(int(args.timeout * 1000), timeout)
    loop.run()
    pipeline.set_state(Gst.State.NULL)
    if result["frames"] >= args.frames:
        result["error"] = None
    print(json.dumps(result), flush=True)
    sys.exit(0 if result["frames"] >= args.frames else 1)


if __name__ == "__main__":
    main()
