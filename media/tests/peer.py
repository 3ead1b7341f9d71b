"""A call participant for the SFU tests: a real WebRTC stack (aiortc).

It joins a call through the SFU's signalling WebSocket, publishes a sine
tone (and, with --screen, a generated "screen share" video track), answers
the SFU's renegotiation offers, decodes what it receives and prints one JSON
report on stdout: per received track, whose it is, how many frames arrived,
the tone's frequency found by FFT, and how many frames came after its owner
left.

usage: peer.py --url WS_URL --token TOKEN --freq HZ [--screen]
               [--seconds N] [--leave-after N]
"""

import argparse
import asyncio
import fractions
import json
import sys
import time

import aioice.ice
import av
import numpy as np
import websockets
import urllib.request

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCIceTransportPolicy

RATE = 48000
FRAME = 960  # 20 ms

# Only loopback candidates: the SFU under test listens on 127.0.0.1.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


class Tone(MediaStreamTrack):
    kind = "audio"

    def __init__(self, freq):
        super().__init__()
        self.freq = freq
        self.pts = 0
        self.start = None

    async def recv(self):
        if self.start is None:
            self.start = time.time()
        wait = self.start + self.pts / RATE - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        t = (np.arange(FRAME) + self.pts) / RATE
        samples = (np.sin(2 * np.pi * self.freq * t) * 12000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self.pts
        frame.time_base = fractions.Fraction(1, RATE)
        self.pts += FRAME
        return frame


class Screen(MediaStreamTrack):
    """A moving test pattern at 10 frames per second."""

    kind = "video"

    def __init__(self):
        super().__init__()
        self.count = 0
        self.start = None

    async def recv(self):
        if self.start is None:
            self.start = time.time()
        wait = self.start + self.count / 10 - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        image = np.zeros((240, 320, 3), dtype=np.uint8)
        image[:, (self.count * 8) % 320 :, 1] = 200
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = self.count * 9000
        frame.time_base = fractions.Fraction(1, 90000)
        self.count += 1
        return frame


def dominant(samples):
    if sum(len(s) for s in samples) < RATE // 4:
        return None
    data = np.concatenate(samples)[-RATE * 2 :].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(data * np.hanning(len(data))))
    return float(np.fft.rfftfreq(len(data), 1 / RATE)[int(np.argmax(spectrum))])


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--freq", type=float, required=True)
    parser.add_argument("--screen", action="store_true")
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--leave-after", type=float)
    parser.add_argument(
        "--relay-tcp",
        action="store_true",
        help="as a client whose UDP is blocked: media only through the SFU's TURN over TCP",
    )
    args = parser.parse_args()

    report = {"joined": False, "error": None, "participants": [], "tracks": {}, "left": {}}
    received = {}  # track id -> {"kind", "frames", "samples", "after_left"}
    left_at = {}  # track id -> when its owner left
    configuration = None
    if args.relay_tcp:
        ice_url = args.url.replace("ws://", "http://").replace("wss://", "https://")
        ice_url = ice_url[: -len("/ws")] + "/ice"
        request = urllib.request.Request(ice_url, headers={"Authorization": f"Bearer {args.token}"})
        servers = json.load(urllib.request.urlopen(request))["iceServers"]
        turn = [s for s in servers if any(u.startswith("turn:") for u in s["urls"])]
        report["iceServers"] = [u for s in turn for u in s["urls"]]
        configuration = RTCConfiguration(
            iceServers=[RTCIceServer(s["urls"], s.get("username"), s.get("credential")) for s in turn],
            iceTransportPolicy=RTCIceTransportPolicy.RELAY,
        )
    pc = RTCPeerConnection(configuration)
    pc.addTrack(Tone(args.freq))
    if args.screen:
        pc.addTrack(Screen())

    def track_id(track):
        """The SFU's id of a received track, from the msid of its m-line."""
        mid = next(t.mid for t in pc.getTransceivers() if t.receiver.track is track)
        for section in pc.remoteDescription.sdp.split("\r\nm=")[1:]:
            lines = section.split("\r\n")
            if f"a=mid:{mid}" not in lines:
                continue
            for line in lines:
                if line.startswith("a=msid:"):
                    return line.split()[1]
                if line.startswith("a=ssrc:") and " msid:" in line:
                    return line.split()[-1]
        return track.id

    async def consume(track):
        name, entry = None, None
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            if entry is None:
                # Known once the description that brought the track is set.
                name = track_id(track)
                entry = received.setdefault(
                    name,
                    {"kind": track.kind, "frames": 0, "samples": [], "after_left": 0,
                     "first": time.time()},
                )
            entry["frames"] += 1
            entry["last"] = time.time()
            # Frames in flight when the owner left are not "after".
            if name in left_at and time.time() - left_at[name] > 1.0:
                entry["after_left"] += 1
            if track.kind == "audio":
                data = frame.to_ndarray()
                channels = len(frame.layout.channels)
                entry["samples"].append(data.reshape(-1, channels)[:, 0])

    report["states"] = []

    @pc.on("connectionstatechange")
    def on_state():
        report["states"].append(pc.connectionState)

    @pc.on("track")
    def on_track(track):
        asyncio.ensure_future(consume(track))

    offer = await pc.createOffer()
    await pc.setLocalDescription(offer)
    async with websockets.connect(args.url, max_size=2**20) as ws:
        await ws.send(
            json.dumps({"type": "join", "token": args.token, "offer": pc.localDescription.sdp})
        )
        deadline = time.time() + (args.leave_after or args.seconds)
        while time.time() < deadline:
            try:
                text = await asyncio.wait_for(ws.recv(), timeout=max(0.05, deadline - time.time()))
            except asyncio.TimeoutError:
                break
            except websockets.ConnectionClosed:
                break
            message = json.loads(text)
            kind = message["type"]
            if kind == "joined":
                report["joined"] = True
                report["participants"] = [p["user"] for p in message["participants"]]
                await pc.setRemoteDescription(RTCSessionDescription(message["answer"], "answer"))
            elif kind == "offer":
                await pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "offer"))
                answer = await pc.createAnswer()
                await pc.setLocalDescription(answer)
                await ws.send(json.dumps({"type": "answer", "sdp": pc.localDescription.sdp}))
            elif kind == "participantLeft":
                report["left"][message["user"]] = message["tracks"]
                for track_id in message["tracks"]:
                    left_at[track_id] = time.time()
            elif kind == "error":
                report["error"] = message["code"]
                break
        if args.leave_after:
            await ws.send(json.dumps({"type": "leave"}))
    await asyncio.sleep(1)
    for track_id, entry in received.items():
        report["tracks"][track_id] = {
            "kind": entry["kind"],
            "frames": entry["frames"],
            "freq": dominant(entry["samples"]) if entry["kind"] == "audio" else None,
            "afterLeft": entry["after_left"],
            # From the first frame to the last: 50 audio frames a second expected.
            "span": entry.get("last", entry["first"]) - entry["first"],
        }
    await pc.close()
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
