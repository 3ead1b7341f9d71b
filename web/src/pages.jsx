// Pages beside the conversations: browsing and creating channels, starting
// a direct message, search results.

import { useEffect, useState } from "preact/hooks";
import * as http from "./api.js";
import { Affiliation } from "./channel.jsx";
import { t, time } from "./i18n.js";
import { Markdown } from "./markdown.jsx";
import { Field } from "./ui.jsx";
import { channelByName, channelName, fail, joinChannel, loadChannels, navigate, state, update, useStore } from "./store.js";

export function Browse() {
  const s = useStore();
  const others = Object.values(s.channels).filter((c) => !c.member && c.kind === "public" && !c.archivedAt);
  return (
    <section class="page" aria-labelledby="browse-title">
      <h1 id="browse-title">{t("browse.title")}</h1>
      {others.length === 0 && <p>{t("browse.none")}</p>}
      <ul class="cards">
        {others.map((c) => (
          <li key={c.id} data-channel={c.name}>
            <strong>#{c.displayName || c.name}</strong>
            {c.purpose && <p>{c.purpose}</p>}
            <button class="primary" onClick={() => joinChannel(c.id).catch(fail)}>
              {t("browse.join")} {c.displayName || c.name}
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

export function CreateChannel() {
  const [error, setError] = useState(null);
  async function submit(e) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    try {
      const channel = await http.post("/api/v1/channels", {
        name: f.get("name"),
        displayName: f.get("displayName") || undefined,
        purpose: f.get("purpose") || "",
        kind: f.get("private") ? "private" : "public",
      });
      update((s) => (s.channels[channel.id] = { ...channel, member: true }));
      navigate(`#/c/${channel.id}`);
    } catch (err) {
      setError(err.message);
    }
  }
  return (
    <section class="page" aria-labelledby="create-title">
      <h1 id="create-title">{t("create.title")}</h1>
      <form onSubmit={submit} class="card">
        <Field label={t("create.name")} id="name" required pattern="[a-z0-9][a-z0-9_\-]{0,63}" autofocus />
        <Field label={t("create.displayName")} id="displayName" />
        <Field label={t("create.purpose")} id="purpose" />
        <div class="field inline">
          <input type="checkbox" id="private" name="private" />
          <label for="private">{t("create.private")}</label>
        </div>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary">
          {t("create.submit")}
        </button>
      </form>
    </section>
  );
}

export function NewMessage() {
  const [q, setQ] = useState("");
  const [users, setUsers] = useState([]);
  useEffect(() => {
    const timer = setTimeout(() => {
      http
        .get(http.path("/api/v1/users", { q: q.trim() || undefined, limit: 50 }))
        .then((page) => setUsers(page.users.filter((u) => u.id !== state.me.id)), fail);
    }, 200);
    return () => clearTimeout(timer);
  }, [q]);
  async function start(user) {
    try {
      const channel = await http.post("/api/v1/channels/direct", { userId: user.id });
      update((s) => {
        s.channels[channel.id] = { ...channel, member: true };
        s.users[user.id] = user;
      });
      await loadChannels();
      navigate(`#/c/${channel.id}`);
    } catch (err) {
      fail(err);
    }
  }
  return (
    <section class="page" aria-labelledby="dm-title">
      <h1 id="dm-title">{t("dm.title")}</h1>
      <Field label={t("dm.search")} id="people" type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} autofocus />
      <ul class="cards">
        {users.map((u) => (
          <li key={u.id} data-user={u.username}>
            <strong>{u.displayName}</strong> @{u.username} <Affiliation user={u} />
            <button onClick={() => start(u)}>
              {t("dm.start")} {u.displayName || u.username}
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

export function SearchResults({ q }) {
  const [posts, setPosts] = useState(null);
  useStore();
  useEffect(() => {
    setPosts(null);
    http.get(http.path("/api/v1/search", { q })).then((r) => setPosts(r.posts ?? r), fail);
  }, [q]);
  return (
    <section class="page" aria-labelledby="search-title">
      <h1 id="search-title">{t("search.title", { q })}</h1>
      {posts && posts.length === 0 && <p>{t("search.none")}</p>}
      <ul class="results">
        {(posts || []).map((p) => (
          <li key={p.id}>
            <a href={`#/c/${p.channelId}`}>
              {channelName(state.channels[p.channelId]) || p.channelId} · {time(p.createdAt)}
            </a>
            <Markdown text={p.message} ctx={{ me: state.me.username, channelByName }} />
          </li>
        ))}
      </ul>
    </section>
  );
}
