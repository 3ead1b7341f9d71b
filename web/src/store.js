// The client's state, one object, and the actions that change it. Views
// re-render on every change (`useStore`); the state is small enough.

import { useEffect, useState } from "preact/hooks";
import * as http from "./api.js";
import { connect } from "./live.js";

export const state = {
  me: null,
  status: "connecting",
  channels: {}, // id -> Channel
  posts: {}, // channel id -> { list (oldest first), next (older cursor), done, loading, firstUnread }
  threads: {}, // root id -> posts, oldest first
  users: {}, // id -> User
  members: {}, // channel id -> Member[]
  typing: {}, // channel id -> { user id: until (ms) }
  calls: {}, // channel id -> Call
  streams: {}, // post id -> the text of an agent's answer so far
  translation: null, // what the workspace translates into: { provider, languages, defaultLanguage }
  translations: {}, // post id -> its translation into the language I read
  agents: [], // the agents the user may ask
  loaded: false, // the channel list has come
  route: parseRoute(location.hash),
  panel: null, // { kind: "thread", rootId } | { kind: "members" } | { kind: "pinned" }
  error: null,
};

const listeners = new Set();
let scheduled = false;

/** Applies `change` to the state and re-renders once per frame. */
export function update(change) {
  if (change) change(state);
  if (scheduled) return;
  scheduled = true;
  queueMicrotask(() => {
    scheduled = false;
    for (const listener of listeners) listener();
  });
}

export function useStore() {
  const [, setTick] = useState(0);
  useEffect(() => {
    const listener = () => setTick((n) => n + 1);
    listeners.add(listener);
    return () => listeners.delete(listener);
  }, []);
  return state;
}

export function fail(error) {
  update((s) => {
    s.error = error?.message || String(error);
  });
}

// Routes live in the fragment: #/c/<channel>, #/browse, #/search/<q>,
// #/admin/<page>, #/invite.
export function parseRoute(hash) {
  const [, kind = "", ...rest] = (hash || "").replace(/^#/, "").split("/");
  return { kind, arg: rest.map(decodeURIComponent).join("/") };
}

export function navigate(hash) {
  if (location.hash !== hash) location.hash = hash;
  else update((s) => (s.route = parseRoute(hash)));
}

window.addEventListener("hashchange", () => {
  update((s) => {
    s.route = parseRoute(location.hash);
    s.panel = null;
  });
  const id = state.route.kind === "c" ? state.route.arg : null;
  if (id) openChannel(id);
});

// --- session ---------------------------------------------------------------

let live = null;

export async function restoreSession() {
  try {
    const session = await http.get("/api/v1/auth/session");
    signedIn(session);
  } catch (e) {
    update((s) => {
      s.me = false;
      if (e.status !== 401) s.error = e.message;
    });
  }
}

/** Whether the session still stands; if not, back to the sign-in page. */
async function checkSession() {
  try {
    await http.get("/api/v1/auth/session");
  } catch (e) {
    if (e.status === 401) signedOut();
  }
}

function signedOut() {
  live?.close();
  live = null;
  http.setCsrf(null);
  update((s) => {
    s.me = false;
    s.loaded = false;
    s.channels = {};
    s.posts = {};
    s.threads = {};
    s.members = {};
    s.calls = {};
  });
}

http.onUnauthenticated(() => signedOut());

export function signedIn(session) {
  http.setCsrf(session.csrfToken);
  update((s) => {
    s.me = { ...session.user, identityProvider: session.identityProvider };
    s.users[session.user.id] = session.user;
  });
  http
    .get("/api/v1/ai/agents")
    .then((agents) => update((s) => (s.agents = agents)))
    .catch(() => {});
  http
    .get("/api/v1/translation")
    .then((offered) => update((s) => (s.translation = offered)))
    .catch(() => {});
  live?.close();
  live = connect({
    onEvent: handle,
    onStatus: (status) => update((s) => (s.status = status)),
    onHello: () => loadChannels(),
    onRefused: () => checkSession(),
  });
}

export async function signIn(username, password) {
  signedIn(await http.post("/api/v1/auth/login", { username, password, cookie: true }));
}

export async function redeem(token, username, password, displayName) {
  signedIn(
    await http.post("/api/v1/guests/redeem", {
      token,
      username,
      password,
      displayName: displayName || undefined,
      cookie: true,
    }),
  );
  navigate("#/");
}

export async function signOut() {
  const viaProvider = state.me?.identityProvider === "oidc";
  try {
    await http.post("/api/v1/auth/logout");
  } finally {
    signedOut();
  }
  // The identity provider's session ends too, or its button would sign
  // the next person at this browser straight back in.
  if (viaProvider) location.assign("/api/v1/auth/oidc/logout");
}

// --- channels --------------------------------------------------------------

/** Loads the sidebar; on a reconnection, also what the open channel missed. */
export async function loadChannels() {
  try {
    const list = await http.get("/api/v1/channels");
    update((s) => {
      s.channels = Object.fromEntries(list.map((c) => [c.id, c]));
      s.loaded = true;
    });
    // Conversations are named after the people in them.
    for (const c of list)
      if (c.member && (c.kind === "direct" || c.kind === "group") && !state.members[c.id]) loadMembers(c.id);
    const id = state.route.kind === "c" ? state.route.arg : null;
    if (id) openChannel(id);
    else if (state.route.kind === "") {
      const first = list.find((c) => c.member);
      if (first) navigate(`#/c/${first.id}`);
    }
  } catch (e) {
    fail(e);
  }
}

export function channelName(channel) {
  if (!channel) return "";
  if (channel.kind === "direct" || channel.kind === "group") {
    const others = (state.members[channel.id] || [])
      .filter((m) => m.id !== state.me?.id)
      .map((m) => m.displayName || m.username);
    return others.length ? others.join(", ") : channel.displayName;
  }
  return channel.displayName || channel.name;
}

export function channelByName(name) {
  const lower = name.toLowerCase();
  return Object.values(state.channels).find((c) => c.name && c.name.toLowerCase() === lower);
}

export async function openChannel(id) {
  let channel = state.channels[id];
  if (!channel) {
    try {
      channel = await http.get(`/api/v1/channels/${id}`);
      update((s) => (s.channels[id] = channel));
    } catch (e) {
      return fail(e);
    }
  }
  loadMembers(id);
  if (channel.member) loadCall(id);
  // A channel loaded before is kept current by the live stream (which
  // replays what a dropped connection missed); only a new one is fetched.
  if (!state.posts[id]) {
    update((s) => {
      s.posts[id] = { list: [], next: null, done: false, loading: false, firstUnread: null };
    });
    await loadOlder(id, channel.unread);
  }
  markRead(id);
}

export async function loadOlder(id, unread = 0) {
  const page = state.posts[id];
  if (!page || page.loading || page.done) return;
  update(() => (page.loading = true));
  try {
    const result = await http.get(
      http.path(`/api/v1/channels/${id}/posts`, { before: page.next ?? undefined, limit: 50 }),
    );
    update((s) => {
      mergePosts(s, id, result.posts);
      for (const t of result.translations || []) s.translations[t.postId] = t;
      page.next = result.next ?? null;
      page.done = result.next === undefined || result.next === null;
      if (unread > 0 && page.firstUnread === null) {
        // The oldest of the `unread` newest posts by others.
        const others = page.list.filter((p) => p.userId !== s.me.id);
        const first = others[Math.max(0, others.length - unread)];
        page.firstUnread = first ? first.seq : null;
      }
    });
  } catch (e) {
    fail(e);
  } finally {
    update(() => (page.loading = false));
  }
}

function mergePosts(s, channelId, posts) {
  const page = s.posts[channelId];
  if (!page) return;
  const byId = new Map(page.list.map((p) => [p.id, p]));
  for (const p of posts) if (!p.deletedAt) byId.set(p.id, p);
  page.list = [...byId.values()].sort((a, b) => a.seq - b.seq);
}

let readTimer = null;
export function markRead(id) {
  clearTimeout(readTimer);
  readTimer = setTimeout(async () => {
    const channel = state.channels[id];
    if (!channel?.member || document.hidden) return;
    try {
      await http.post(`/api/v1/channels/${id}/read`, {});
      update((s) => {
        if (s.channels[id]) {
          s.channels[id].unread = 0;
          s.channels[id].mentions = 0;
        }
      });
    } catch {
      /* the next view retries */
    }
  }, 300);
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && state.route.kind === "c") markRead(state.route.arg);
});

export async function loadMembers(id) {
  try {
    const members = await http.get(`/api/v1/channels/${id}/members`);
    update((s) => {
      s.members[id] = members;
      for (const m of members) s.users[m.id] = m;
    });
  } catch {
    /* not a member of a private channel: nothing to show */
  }
}

async function loadCall(id) {
  try {
    const call = await http.get(`/api/v1/channels/${id}/call`);
    update((s) => (s.calls[id] = call));
  } catch {
    update((s) => delete s.calls[id]);
  }
}

export async function loadThread(rootId) {
  try {
    const posts = await http.get(`/api/v1/posts/${rootId}/thread`);
    update((s) => (s.threads[rootId] = posts));
  } catch (e) {
    fail(e);
  }
}

export async function joinChannel(id) {
  const channel = await http.post(`/api/v1/channels/${id}/join`);
  update((s) => (s.channels[id] = { ...channel, member: true }));
  navigate(`#/c/${id}`);
}

export async function leaveChannel(id) {
  await http.post(`/api/v1/channels/${id}/leave`);
  update((s) => {
    delete s.posts[id];
    if (s.channels[id]) s.channels[id].member = false;
  });
  navigate("#/");
}

// --- posting ---------------------------------------------------------------

export async function send(channelId, message, rootId, files) {
  const fileIds = [];
  for (const file of files || []) {
    const uploaded = await http.api(
      "POST",
      http.path(`/api/v1/channels/${channelId}/files`, { name: file.name || "pasted" }),
      file,
    );
    fileIds.push(uploaded.id);
  }
  const post = await http.post(`/api/v1/channels/${channelId}/posts`, {
    message,
    rootId: rootId || undefined,
    fileIds,
  });
  update((s) => place(s, post));
  return post;
}

export const edit = (id, message) => http.patch(`/api/v1/posts/${id}`, { message });
export const remove = (id) => http.del(`/api/v1/posts/${id}`);
export const pin = (post) => (post.pinned ? http.del : http.post)(`/api/v1/posts/${post.id}/pin`);

export function toggleReaction(post, emoji) {
  const mine = post.reactions.some(([e, u]) => e === emoji && u === state.me.id);
  const url = `/api/v1/posts/${post.id}/reactions/${encodeURIComponent(emoji)}`;
  return mine ? http.del(url) : http.put(url);
}

/** The language I read, and whether to translate into it. */
export function myLanguage() {
  return state.me?.language || state.translation?.defaultLanguage || null;
}

export async function setReadingLanguage(language) {
  await http.put("/api/v1/users/me/language", { language });
  update((s) => {
    s.me.language = language;
    s.translations = {};
    for (const id of Object.keys(s.posts)) delete s.posts[id];
  });
  const route = state.route;
  if (route.kind === "c") openChannel(route.arg);
}

/** Turns translation on or off in a channel (its admins). */
export async function setChannelTranslation(channelId, enabled) {
  await http.put(`/api/v1/channels/${channelId}/translation`, { enabled });
  update((s) => s.channels[channelId] && (s.channels[channelId].translation = enabled));
}

/** Has posts in a channel translated for me, or not. */
export async function setMyTranslation(channelId, enabled) {
  await http.put(`/api/v1/channels/${channelId}/translation/me`, { enabled });
  update((s) => {
    if (s.channels[channelId]) s.channels[channelId].translate = enabled;
    // Shown again as they are (or translated) from the next page read.
    delete s.posts[channelId];
    if (!enabled) for (const [id, t] of Object.entries(s.translations)) if (t.channelId === channelId) delete s.translations[id];
  });
  if (state.route.kind === "c" && state.route.arg === channelId) openChannel(channelId);
}

/** A summary of the channel since `since` (ISO time), the caller's alone. */
export const summarise = (channelId, since) => http.post("/api/v1/ai/summaries", { channelId, since });

export function typing(channelId, rootId) {
  live?.send({ type: "typing", channelId, rootId: rootId || undefined });
}

// --- live events -------------------------------------------------------------

/** Puts a post where it is shown: its channel's list and its thread. */
function place(s, post) {
  const page = s.posts[post.channelId];
  if (page) mergePosts(s, post.channelId, [post]);
  const root = post.rootId || post.id;
  if (s.threads[root]) {
    const list = s.threads[root].filter((p) => p.id !== post.id);
    s.threads[root] = [...list, post].sort((a, b) => a.seq - b.seq);
  }
}

function unplace(s, post) {
  const page = s.posts[post.channelId];
  if (page) page.list = page.list.filter((p) => p.id !== post.id);
  for (const [root, list] of Object.entries(s.threads))
    s.threads[root] = list.filter((p) => p.id !== post.id);
}

function mentionsMe(message) {
  const me = state.me?.username;
  return !!me && new RegExp(`(^|[\\s(])@${me.replace(/[.]/g, "\\.")}(?![\\w.-])`, "i").test(message);
}

export function handle(event) {
  const data = event.data;
  switch (event.type) {
    case "posted":
      update((s) => {
        delete s.streams[data.id];
        place(s, data);
        const channel = s.channels[data.channelId];
        const viewing = s.route.kind === "c" && s.route.arg === data.channelId && !document.hidden;
        if (channel && data.userId !== s.me.id) {
          if (viewing) markRead(data.channelId);
          else {
            channel.unread += 1;
            if (mentionsMe(data.message)) channel.mentions += 1;
          }
        }
        if (s.typing[data.channelId]) delete s.typing[data.channelId][data.userId];
        if (!s.users[data.userId]) loadMembers(data.channelId);
      });
      break;
    case "edited":
    case "reaction_added":
    case "reaction_removed":
    case "files_changed":
      update((s) => place(s, data));
      break;
    case "deleted":
      update((s) => unplace(s, data));
      break;
    case "member_added":
      if (data.userId === state.me?.id) loadChannels();
      else loadMembers(data.channelId);
      break;
    case "member_removed":
      if (data.userId === state.me?.id) {
        update((s) => {
          delete s.channels[data.channelId];
          delete s.posts[data.channelId];
        });
        if (state.route.arg === data.channelId) navigate("#/");
        loadChannels();
      } else loadMembers(data.channelId);
      break;
    case "channel_archived":
      update((s) => {
        const c = s.channels[data.channelId];
        if (c) c.archivedAt = new Date().toISOString();
      });
      break;
    case "channel_updated":
      update((s) => {
        const c = s.channels[data.channelId];
        if (c) Object.assign(c, { name: data.name, displayName: data.displayName, purpose: data.purpose, header: data.header });
      });
      break;
    case "call_started":
    case "call_updated":
      update((s) => (s.calls[data.channelId] = data));
      break;
    case "call_ended":
      update((s) => delete s.calls[data.channelId]);
      break;
    case "streaming":
      // An agent's answer as it is written: shown in place until the
      // answer itself (the same id) is posted.
      update((s) => {
        const text = (s.streams[data.postId] || "") + data.text;
        s.streams[data.postId] = text;
        place(s, {
          id: data.postId,
          seq: Number.MAX_SAFE_INTEGER,
          channelId: data.channelId,
          userId: data.userId,
          rootId: data.rootId,
          message: text,
          pinned: false,
          createdAt: new Date().toISOString(),
          reactions: [],
          files: [],
          streaming: true,
        });
        if (!s.users[data.userId]) loadMembers(data.channelId);
      });
      break;
    case "translated":
      if (data.language === myLanguage() && state.channels[data.channelId]?.translate !== false)
        update((s) => (s.translations[data.postId] = data));
      break;
    case "translation_switched":
      update((s) => {
        const c = s.channels[data.channelId];
        if (c) c.translation = data.enabled;
      });
      break;
    case "typing":
      if (data.userId === state.me?.id) break;
      update((s) => {
        const channel = (s.typing[data.channelId] ||= {});
        channel[data.userId] = Date.now() + 5000;
      });
      setTimeout(() => update(), 5100);
      break;
  }
}
