#!/usr/bin/python3
"""Watches a room over WHEP with aiortc and decodes its video with PyAV.

Usage: aiortc_whep.py <whep url> [--frames N] [--timeout SECONDS] [--video-only]

Prints one JSON line on stdout:
  {"frames": <decoded video frames>, "width": ..., "height": ..., "codec": ..., "audio_frames": ...,
   "status": <POST status>, "location": ..., "delete_status": ..., "error": <message or null>}
and exits 0 when at least N frames were decoded, 1 otherwise. Uses only the standard library besides
aiortc (Debian: python3-aiortc), so the server's tests can run it with /usr/bin/python3.
"""

import argparse
import asyncio
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError


def http(method, url, body=None, content_type=None):
    """Blocking HTTP request; returns (status, headers, text). Error statuses are returned, not raised."""
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode(errors="replace")


async def count_video(track, result, wanted, done):
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        result["frames"] += 1
        result["width"], result["height"] = frame.width, frame.height
        if result["frames"] >= wanted:
            done.set()


async def count_audio(track, result):
    while True:
        try:
            await track.recv()
        except MediaStreamError:
            return
        result["audio_frames"] += 1


async def watch(url, wanted, timeout, audio):
    result = {
        "frames": 0,
        "width": 0,
        "height": 0,
        "codec": None,
        "audio_frames": 0,
        "status": None,
        "location": None,
        "delete_status": None,
        "error": None,
    }
    pc = RTCPeerConnection()
    done = asyncio.Event()
    tasks = []

    @pc.on("track")
    def on_track(track):
        if track.kind == "video":
            tasks.append(asyncio.ensure_future(count_video(track, result, wanted, done)))
        else:
            tasks.append(asyncio.ensure_future(count_audio(track, result)))

    pc.addTransceiver("video", direction="recvonly")
    # A room without audio answers the audio m-line rejected (port 0); aiortc 1.4 accepts that only with ICE
    # credentials and rtcp-mux on the rejected line, which the server writes (tested without --video-only).
    if audio:
        pc.addTransceiver("audio", direction="recvonly")
    # aiortc gathers every candidate inside setLocalDescription, so the offer needs no trickling.
    await pc.setLocalDescription(await pc.createOffer())
    loop = asyncio.get_running_loop()
    status, headers, text = await loop.run_in_executor(
        None, http, "POST", url, pc.localDescription.sdp.encode(), "application/sdp"
    )
    result["status"] = status
    if status != 201:
        result["error"] = f"POST answered {status}: {text.strip()}"
        await pc.close()
        return result
    location = urllib.parse.urljoin(url, headers.get("Location", ""))
    result["location"] = location
    await pc.setRemoteDescription(RTCSessionDescription(sdp=text, type="answer"))
    for transceiver in pc.getTransceivers():
        codecs = getattr(transceiver, "_codecs", [])
        if transceiver.kind == "video" and codecs:
            result["codec"] = codecs[0].mimeType
    try:
        await asyncio.wait_for(done.wait(), timeout)
    except asyncio.TimeoutError:
        result["error"] = f"only {result['frames']} video frames decoded in {timeout} s"
    status, _, _ = await loop.run_in_executor(None, http, "DELETE", location)
    result["delete_status"] = status
    await pc.close()
    for task in tasks:
        task.cancel()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", help="WHEP endpoint, e.g. http://127.0.0.1:8080/whep?target_id=room")
    parser.add_argument("--frames", type=int, default=30, help="decoded frames to wait for")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for them")
    parser.add_argument("--video-only", action="store_true", help="offer no audio m-line")
    args = parser.parse_args()
    result = asyncio.run(watch(args.url, args.frames, args.timeout, not args.video_only))
    print(json.dumps(result), flush=True)
    sys.exit(0 if result["frames"] >= args.frames else 1)


if __name__ == "__main__":
    main()
