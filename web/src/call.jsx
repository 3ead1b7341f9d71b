// A channel's call in the browser: the microphone (and a screen, when
// shared) go to the SFU the server names; every other participant's tracks
// come back from it. The SFU offers on every change and the browser
// answers (see media/src/signal.rs); ICE is not trickled.

import { useEffect, useRef, useState } from "preact/hooks";
import * as http from "./api.js";
import { t } from "./i18n.js";
import { fail, state, update, useStore } from "./store.js";

/** The call this page is in, if any (one at a time). */
let session = null;

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 3000); // what was gathered by then
  });
}

class CallSession {
  constructor(channelId) {
    this.channelId = channelId;
    this.remote = new Map(); // stream id (the publisher's user id) -> MediaStream
    this.levels = new Map(); // stream id -> { level, bytes }
    this.muted = false;
    this.sharing = false;
    this.state = "connecting";
    this.peers = [];
  }

  changed() {
    update();
  }

  async start() {
    const ticket = await http.post(`/api/v1/channels/${this.channelId}/call`);
    this.local = await navigator.mediaDevices.getUserMedia({ audio: true });
    const pc = (this.pc = new RTCPeerConnection());
    for (const track of this.local.getAudioTracks()) pc.addTrack(track, this.local);
    // A video sender from the start, with no track until a screen is
    // shared: sharing then swaps the track in without renegotiating.
    this.screen = pc.addTransceiver("video", { direction: "sendonly" });
    pc.ontrack = (e) => {
      const stream = e.streams[0];
      if (!stream) return;
      this.remote.set(stream.id, stream);
      stream.onremovetrack = () => {
        if (stream.getTracks().length === 0) this.remote.delete(stream.id);
        this.changed();
      };
      this.changed();
    };
    pc.onconnectionstatechange = () => {
      this.state = pc.connectionState;
      this.changed();
    };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const ws = (this.ws = new WebSocket(ticket.url));
    ws.onopen = () => ws.send(JSON.stringify({ type: "join", token: ticket.token, offer: pc.localDescription.sdp }));
    ws.onmessage = (m) => this.signal(JSON.parse(m.data)).catch(fail);
    ws.onclose = () => {
      if (session === this) this.end(false);
    };
    this.meter = setInterval(() => this.measure(), 1000);
  }

  async signal(message) {
    switch (message.type) {
      case "joined":
        this.peers = message.participants;
        await this.pc.setRemoteDescription({ type: "answer", sdp: message.answer });
        break;
      case "offer":
        await this.pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
        await this.pc.setLocalDescription(await this.pc.createAnswer());
        this.ws.send(JSON.stringify({ type: "answer", sdp: this.pc.localDescription.sdp }));
        break;
      case "participantJoined":
        this.peers = [...this.peers.filter((p) => p.user !== message.user), { user: message.user, name: message.name }];
        break;
      case "participantLeft":
        this.peers = this.peers.filter((p) => p.user !== message.user);
        this.remote.delete(message.user);
        break;
      case "error":
        fail(new Error(message.message));
        break;
    }
    this.changed();
  }

  /** Who is heard: each incoming audio track's level and bytes so far. */
  async measure() {
    if (!this.pc) return;
    const stats = await this.pc.getStats();
    const byTrack = new Map();
    for (const receiver of this.pc.getReceivers()) {
      const stream = [...this.remote.entries()].find(([, s]) => s.getTracks().includes(receiver.track));
      if (stream && receiver.track.kind === "audio") byTrack.set(receiver.track.id, stream[0]);
    }
    for (const report of stats.values()) {
      if (report.type !== "inbound-rtp" || report.kind !== "audio") continue;
      const owner = byTrack.get(report.trackIdentifier);
      if (owner) this.levels.set(owner, { level: report.audioLevel || 0, bytes: report.bytesReceived || 0 });
    }
    this.changed();
  }

  toggleMute() {
    this.muted = !this.muted;
    for (const track of this.local.getAudioTracks()) track.enabled = !this.muted;
    this.changed();
  }

  async toggleShare() {
    if (this.sharing) {
      this.shared?.getTracks().forEach((t) => t.stop());
      await this.screen.sender.replaceTrack(null);
      this.sharing = false;
    } else {
      this.shared = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
      const track = this.shared.getVideoTracks()[0];
      track.onended = () => this.sharing && this.toggleShare();
      await this.screen.sender.replaceTrack(track);
      this.sharing = true;
    }
    this.changed();
  }

  async end(tellServer = true) {
    if (session === this) session = null;
    clearInterval(this.meter);
    try {
      if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "leave" }));
      this.ws?.close();
    } catch {
      /* already closed */
    }
    this.pc?.close();
    this.local?.getTracks().forEach((t) => t.stop());
    this.shared?.getTracks().forEach((t) => t.stop());
    if (tellServer) await http.post(`/api/v1/channels/${this.channelId}/call/leave`).catch(() => {});
    this.changed();
  }
}

function Remote({ id, stream, level }) {
  const audio = useRef(null);
  const video = useRef(null);
  const hasVideo = stream.getVideoTracks().some((t) => t.readyState === "live");
  useEffect(() => {
    if (audio.current) audio.current.srcObject = stream;
    if (video.current) video.current.srcObject = stream;
  }, [stream, hasVideo]);
  const name = state.users[id]?.displayName || state.users[id]?.username || id;
  return (
    <li class="remote" data-remote={state.users[id]?.username || id} data-bytes={level?.bytes || 0} data-level={(level?.level || 0).toFixed(3)}>
      <span class={level?.level > 0.01 ? "speaking" : ""}>{name}</span>
      <audio ref={audio} autoplay />
      {hasVideo && <video ref={video} autoplay muted playsinline aria-label={name} />}
    </li>
  );
}

export function CallBar({ channelId }) {
  const s = useStore();
  const [busy, setBusy] = useState(false);
  const call = s.calls[channelId];
  const mine = session && session.channelId === channelId ? session : null;
  const names = (call?.participants || []).map((id) => s.users[id]?.displayName || s.users[id]?.username || id);
  async function join() {
    setBusy(true);
    try {
      if (session) await session.end();
      session = new CallSession(channelId);
      update();
      await session.start();
    } catch (e) {
      session?.end();
      fail(e);
    } finally {
      setBusy(false);
    }
  }
  return (
    <div class="callbar" role="region" aria-label={t("call.start")} data-call={mine ? mine.state : call ? "open" : "none"}>
      {call && <span class="in-call">{t("call.inCall", { names: names.join(", ") })}</span>}
      {!mine && (
        <button onClick={join} disabled={busy}>
          📞 {call ? t("call.join") : t("call.start")}
        </button>
      )}
      {mine && (
        <>
          {mine.state !== "connected" && <span>{t("call.connecting")}</span>}
          <button onClick={() => mine.toggleMute()} aria-pressed={mine.muted}>
            {mine.muted ? t("call.unmute") : t("call.mute")}
          </button>
          <button onClick={() => mine.toggleShare().catch(fail)} aria-pressed={mine.sharing}>
            {mine.sharing ? t("call.stopShare") : t("call.share")}
          </button>
          <button class="danger" onClick={() => mine.end()}>
            {t("call.leave")}
          </button>
          <ul class="remotes">
            {[...mine.remote.entries()].map(([id, stream]) => (
              <Remote key={id} id={id} stream={stream} level={mine.levels.get(id)} />
            ))}
          </ul>
        </>
      )}
    </div>
  );
}
