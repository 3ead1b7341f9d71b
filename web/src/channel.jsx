// One conversation: its header, its history with infinite scroll, the
// composer, and the side panel (a thread, the members, the pinned posts).

import { Fragment } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { CallBar } from "./call.jsx";
import { t, time } from "./i18n.js";
import { EMOJI, Markdown } from "./markdown.jsx";
import * as http from "./api.js";
import {
  channelByName,
  channelName,
  edit,
  fail,
  joinChannel,
  leaveChannel,
  loadOlder,
  loadThread,
  pin,
  remove,
  send,
  setChannelTranslation,
  setMyTranslation,
  summarise,
  state,
  toggleReaction,
  typing,
  update,
  useStore,
} from "./store.js";

const QUICK_REACTIONS = ["+1", "heart", "tada", "eyes", "white_check_mark"];

function userOf(id) {
  return state.users[id];
}

function nameOf(id) {
  const u = userOf(id);
  return u ? u.displayName || u.username : id.slice(-6);
}

/** Who someone is beside their name: a guest, or a partner's user. */
export function Affiliation({ user }) {
  if (!user) return null;
  return (
    <>
      {user.organisation && (
        <span class="tag partner" title={t("members.partner", { organisation: user.organisation })}>
          {user.organisation}
        </span>
      )}
      {user.guest && <span class="tag guest">{t("members.guest")}</span>}
    </>
  );
}

function FileList({ files }) {
  return (
    <ul class="files">
      {files.map((f) => {
        const url = `/api/v1/files/${f.id}`;
        if (f.state === "pending") return <li key={f.id}>{t("post.filePending", { name: f.name })}</li>;
        if (f.state === "refused") return <li key={f.id}>{t("post.fileRefused", { name: f.name })}</li>;
        const image = /^image\/(png|jpeg|gif|webp)$/.test(f.contentType);
        return (
          <li key={f.id} class={image ? "image" : ""}>
            {image && <img src={url} alt={f.name} loading="lazy" />}
            <a href={url} download={f.name} aria-label={t("post.download", { name: f.name })}>
              <span class="file-name">{f.name}</span> <span class="size">{formatSize(f.size)}</span>
            </a>
          </li>
        );
      })}
    </ul>
  );
}

function formatSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function Reactions({ post }) {
  const groups = new Map();
  for (const [emoji, user] of post.reactions) {
    if (!groups.has(emoji)) groups.set(emoji, []);
    groups.get(emoji).push(user);
  }
  if (groups.size === 0) return null;
  return (
    <div class="reactions">
      {[...groups].map(([emoji, users]) => {
        const mine = users.includes(state.me.id);
        return (
          <button
            key={emoji}
            class={mine ? "reaction mine" : "reaction"}
            aria-pressed={mine}
            aria-label={t("reaction.label", { emoji, names: users.map(nameOf).join(", ") })}
            onClick={() => toggleReaction(post, emoji).catch(fail)}
          >
            {EMOJI[emoji] || emoji} <span>{users.length}</span>
          </button>
        );
      })}
    </div>
  );
}

/** A post in the language the reader reads, the original one click away. */
function Translated({ post, ctx }) {
  const [original, setOriginal] = useState(false);
  const translation = state.translations[post.id];
  if (!translation) return <Markdown text={post.message} ctx={ctx} />;
  if (!translation.text)
    return (
      <Fragment>
        <Markdown text={post.message} ctx={ctx} />
        <p class="translation-note">{t("translation.failed", { problem: translation.problem })}</p>
      </Fragment>
    );
  return (
    <Fragment>
      <Markdown text={original ? post.message : translation.text} ctx={ctx} />
      <p class="translation-note">
        {original
          ? t("translation.original", { language: translation.source })
          : t("translation.by", { language: translation.source, provider: translation.provider })}{" "}
        <button class="link" onClick={() => setOriginal((v) => !v)}>
          {original ? t("translation.showTranslation") : t("translation.showOriginal")}
        </button>
      </p>
    </Fragment>
  );
}

function Post({ post, replies, inThread }) {
  const [editing, setEditing] = useState(false);
  const [picking, setPicking] = useState(false);
  const author = userOf(post.userId);
  const mine = post.userId === state.me.id;
  const ctx = { me: state.me.username, channelByName };
  async function save(e) {
    e.preventDefault();
    const text = new FormData(e.currentTarget).get("message");
    try {
      await edit(post.id, text);
      setEditing(false);
    } catch (err) {
      fail(err);
    }
  }
  return (
    <article
      class={post.streaming ? "post streaming" : "post"}
      data-post={post.id}
      aria-busy={post.streaming ? "true" : undefined}
      aria-label={`${nameOf(post.userId)}, ${time(post.createdAt)}`}
    >
      <header>
        <strong class="author">{nameOf(post.userId)}</strong>
        <Affiliation user={author} />
        <time datetime={post.createdAt}>{time(post.createdAt)}</time>
        {post.editedAt && <span class="edited">{t("post.edited")}</span>}
        {post.pinned && <span class="tag">📌</span>}
      </header>
      {editing ? (
        <form class="edit" onSubmit={save}>
          <label class="visually-hidden" for={`edit-${post.id}`}>
            {t("post.edit")}
          </label>
          <textarea
            id={`edit-${post.id}`}
            name="message"
            defaultValue={post.message}
            autofocus
            onKeyDown={(e) => e.key === "Escape" && setEditing(false)}
          />
          <button type="submit" class="primary">
            {t("post.save")}
          </button>
          <button type="button" onClick={() => setEditing(false)}>
            {t("post.cancel")}
          </button>
        </form>
      ) : (
        <Translated post={post} ctx={ctx} />
      )}
      {post.files.length > 0 && <FileList files={post.files} />}
      <Reactions post={post} />
      {!inThread && replies > 0 && (
        <button class="link replies" onClick={() => openThread(post.id)}>
          {t(replies === 1 ? "post.oneReply" : "post.replies", { count: replies })}
        </button>
      )}
      <div class="post-actions" role="toolbar" aria-label={t("post.actions")}>
        <button class="icon" aria-label={t("post.react")} aria-expanded={picking} onClick={() => setPicking((v) => !v)}>
          ☺
        </button>
        {!inThread && (
          <button class="icon" aria-label={t("post.reply")} onClick={() => openThread(post.id)}>
            ↩
          </button>
        )}
        <button class="icon" aria-label={post.pinned ? t("post.unpin") : t("post.pin")} onClick={() => pin(post).catch(fail)}>
          📌
        </button>
        {mine && (
          <button class="icon" aria-label={t("post.edit")} onClick={() => setEditing(true)}>
            ✎
          </button>
        )}
        {mine && (
          <button
            class="icon"
            aria-label={t("post.delete")}
            onClick={() => confirm(t("post.deleteConfirm")) && remove(post.id).catch(fail)}
          >
            🗑
          </button>
        )}
      </div>
      {picking && (
        <div class="picker" role="group" aria-label={t("post.react")}>
          {QUICK_REACTIONS.map((emoji) => (
            <button
              key={emoji}
              class="icon"
              aria-label={emoji}
              onClick={() => {
                setPicking(false);
                toggleReaction(post, emoji).catch(fail);
              }}
            >
              {EMOJI[emoji]}
            </button>
          ))}
        </div>
      )}
    </article>
  );
}

function openThread(rootId) {
  update((s) => (s.panel = { kind: "thread", rootId }));
  loadThread(rootId);
}

/** The message box: Enter sends, Shift+Enter breaks the line; files come
 * from the button, a drop or a paste; @ offers the channel's members. */
function Composer({ channelId, rootId, label }) {
  const [text, setText] = useState("");
  const [files, setFiles] = useState([]);
  const [busy, setBusy] = useState(false);
  const [dragging, setDragging] = useState(false);
  const [suggest, setSuggest] = useState(null); // { query, start, index }
  const area = useRef(null);
  const fileInput = useRef(null);
  const lastTyping = useRef(0);
  const id = rootId ? `reply-${rootId}` : "composer";
  const members = state.members[channelId] || [];
  const matches = suggest
    ? members
        .filter((m) => m.username.startsWith(suggest.query) || (m.displayName || "").toLowerCase().startsWith(suggest.query))
        .slice(0, 8)
    : [];

  async function submit() {
    const message = text.trim();
    if ((!message && files.length === 0) || busy) return;
    setBusy(true);
    try {
      await send(channelId, message || files.map((f) => f.name).join(", "), rootId, files);
      setText("");
      setFiles([]);
    } catch (err) {
      fail(err);
    } finally {
      setBusy(false);
      area.current?.focus();
    }
  }

  function complete(member) {
    const before = text.slice(0, suggest.start);
    const after = text.slice(area.current.selectionStart);
    setText(`${before}@${member.username} ${after}`);
    setSuggest(null);
    area.current.focus();
  }

  function onInput(e) {
    const value = e.currentTarget.value;
    setText(value);
    const caret = e.currentTarget.selectionStart;
    const m = /(^|\s)@([a-z0-9._-]*)$/i.exec(value.slice(0, caret));
    setSuggest(m ? { query: m[2].toLowerCase(), start: caret - m[2].length - 1, index: 0 } : null);
    if (Date.now() - lastTyping.current > 2000) {
      lastTyping.current = Date.now();
      typing(channelId, rootId);
    }
  }

  function onKeyDown(e) {
    if (suggest && matches.length) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const step = e.key === "ArrowDown" ? 1 : -1;
        setSuggest({ ...suggest, index: (suggest.index + step + matches.length) % matches.length });
        return;
      }
      if (e.key === "Enter" || e.key === "Tab") {
        e.preventDefault();
        complete(matches[suggest.index]);
        return;
      }
      if (e.key === "Escape") {
        setSuggest(null);
        return;
      }
    }
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  }

  const addFiles = (list) => setFiles((current) => [...current, ...Array.from(list)].slice(0, 10));

  return (
    <form
      class={dragging ? "composer dragging" : "composer"}
      onSubmit={(e) => (e.preventDefault(), submit())}
      onDragOver={(e) => (e.preventDefault(), setDragging(true))}
      onDragLeave={() => setDragging(false)}
      onDrop={(e) => {
        e.preventDefault();
        setDragging(false);
        addFiles(e.dataTransfer.files);
      }}
    >
      <label for={id} class="visually-hidden">
        {label}
      </label>
      {suggest && matches.length > 0 && (
        <ul class="suggestions" role="listbox" id={`${id}-suggestions`}>
          {matches.map((m, i) => (
            <li
              key={m.id}
              role="option"
              id={`${id}-option-${i}`}
              aria-selected={i === suggest.index}
              onMouseDown={(e) => (e.preventDefault(), complete(m))}
            >
              <strong>@{m.username}</strong> {m.displayName} <Affiliation user={m} />
            </li>
          ))}
        </ul>
      )}
      <textarea
        id={id}
        ref={area}
        rows={rootId ? 2 : 3}
        value={text}
        placeholder={label}
        aria-describedby={`${id}-hint`}
        aria-autocomplete="list"
        aria-controls={suggest ? `${id}-suggestions` : undefined}
        aria-activedescendant={suggest && matches.length ? `${id}-option-${suggest.index}` : undefined}
        onInput={onInput}
        onKeyDown={onKeyDown}
        onPaste={(e) => {
          if (e.clipboardData.files.length) {
            e.preventDefault();
            addFiles(e.clipboardData.files);
          }
        }}
      />
      {files.length > 0 && (
        <ul class="pending-files">
          {files.map((f, i) => (
            <li key={i}>
              {busy ? t("composer.uploading", { name: f.name }) : f.name}
              <button type="button" class="icon" aria-label={`${t("post.delete")} ${f.name}`} onClick={() => setFiles(files.filter((_, j) => j !== i))}>
                ×
              </button>
            </li>
          ))}
        </ul>
      )}
      <div class="composer-bar">
        <span id={`${id}-hint`} class="hint">
          {dragging ? t("composer.drop") : t("composer.hint")}
        </span>
        <input type="file" multiple ref={fileInput} class="visually-hidden" tabIndex={-1} aria-hidden="true" onChange={(e) => addFiles(e.currentTarget.files)} />
        <button type="button" class="icon" aria-label={t("composer.attach")} onClick={() => fileInput.current.click()}>
          📎
        </button>
        <button type="submit" class="primary" disabled={busy}>
          {t("composer.send")}
        </button>
      </div>
    </form>
  );
}

function Typing({ channelId, rootId }) {
  const now = Date.now();
  const who = Object.entries(state.typing[channelId] || {})
    .filter(([, until]) => until > now)
    .map(([user]) => nameOf(user));
  return (
    <p class="typing" aria-live="polite">
      {who.length ? t("channel.typing", { names: who.join(", ") }) : "\u00a0"}
    </p>
  );
}

function History({ channelId }) {
  const page = state.posts[channelId];
  const list = useRef(null);
  const top = useRef(null);
  const stick = useRef(true);
  const previous = useRef({ height: 0, first: null });
  const roots = page ? page.list.filter((p) => !p.rootId) : [];
  const replies = new Map();
  for (const p of page?.list || []) if (p.rootId) replies.set(p.rootId, (replies.get(p.rootId) || 0) + 1);

  // Loading older posts keeps what was on screen where it was; a new post
  // scrolls to the bottom only for a reader already there.
  useLayoutEffect(() => {
    const el = list.current;
    if (!el) return;
    const first = roots[0]?.id ?? null;
    if (previous.current.first && first !== previous.current.first && !stick.current) {
      el.scrollTop += el.scrollHeight - previous.current.height;
    } else if (stick.current) {
      el.scrollTop = el.scrollHeight;
    }
    previous.current = { height: el.scrollHeight, first };
  });

  useEffect(() => {
    if (!top.current) return;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) loadOlder(channelId);
    });
    observer.observe(top.current);
    return () => observer.disconnect();
  }, [channelId, page?.done]);

  if (!page) return <div class="history" />;
  return (
    <div
      class="history"
      ref={list}
      tabIndex={0}
      role="log"
      aria-label={channelName(state.channels[channelId])}
      onScroll={(e) => {
        const el = e.currentTarget;
        stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
      }}
    >
      {page.done ? (
        <p class="start">{t("channel.start", { name: channelName(state.channels[channelId]) })}</p>
      ) : (
        <p class="older" ref={top}>
          {t("channel.loadingOlder")}
        </p>
      )}
      {roots.map((p) => (
        <Fragment key={p.id}>
          {page.firstUnread === p.seq && (
            <div class="new-line" role="separator">
              <span>{t("channel.newMessages")}</span>
            </div>
          )}
          <Post post={p} replies={replies.get(p.id) || 0} />
        </Fragment>
      ))}
    </div>
  );
}

function Thread({ rootId, channelId }) {
  const posts = state.threads[rootId];
  return (
    <aside class="panel" aria-labelledby="thread-title">
      <PanelHeader id="thread-title" title={t("thread.title")} />
      <div class="panel-body" role="log">
        {(posts || []).map((p) => (
          <Post key={p.id} post={p} inThread />
        ))}
      </div>
      <Typing channelId={channelId} rootId={rootId} />
      <Composer channelId={channelId} rootId={rootId} label={t("composer.reply")} />
    </aside>
  );
}

function PanelHeader({ id, title }) {
  const close = useRef(null);
  useEffect(() => close.current?.focus(), []);
  return (
    <header class="panel-header">
      <h2 id={id}>{title}</h2>
      <button ref={close} class="icon" aria-label={t("panel.close")} onClick={() => update((s) => (s.panel = null))}>
        ×
      </button>
    </header>
  );
}

function Members({ channelId }) {
  const members = state.members[channelId] || [];
  return (
    <aside class="panel" aria-labelledby="members-title">
      <PanelHeader id="members-title" title={`${t("channel.members")} (${members.length})`} />
      <ul class="panel-body members">
        {members.map((m) => (
          <li key={m.id} data-member={m.username}>
            <strong>{m.displayName || m.username}</strong> <span class="username">@{m.username}</span>
            <Affiliation user={m} />
            {m.channelRole === "admin" && <span class="tag">{t("members.admin")}</span>}
          </li>
        ))}
      </ul>
    </aside>
  );
}

const SPANS = { day: 24, week: 24 * 7, month: 24 * 30 };

/** A summary of the channel by the workspace's model, the reader's alone
 * until they post it. */
function Summary({ channelId }) {
  const [span, setSpan] = useState("day");
  const [summary, setSummary] = useState(null);
  const [problem, setProblem] = useState(null);
  useEffect(() => {
    setSummary(null);
    setProblem(null);
    const since = new Date(Date.now() - SPANS[span] * 3600 * 1000).toISOString();
    summarise(channelId, since).then(setSummary, (err) => setProblem(err.message));
  }, [channelId, span]);
  return (
    <aside class="panel" aria-labelledby="summary-title">
      <PanelHeader id="summary-title" title={t("summary.title")} />
      <div class="panel-body summary" aria-busy={!summary && !problem ? "true" : undefined}>
        <label>
          {t("summary.since")}{" "}
          <select value={span} onChange={(e) => setSpan(e.currentTarget.value)}>
            {Object.keys(SPANS).map((k) => (
              <option value={k} key={k}>
                {t(`summary.${k}`)}
              </option>
            ))}
          </select>
        </label>
        {problem && <p role="alert">{problem}</p>}
        {!summary && !problem && <p class="loading">{t("summary.loading")}</p>}
        {summary && (
          <Fragment>
            <Markdown text={summary.summary} ctx={{ me: state.me.username, channelByName }} />
            <p class="note">{t("summary.note", { model: summary.model, posts: summary.posts })}</p>
            <button
              onClick={() =>
                send(channelId, `**${t("summary.title")}** (${summary.model}):\n\n${summary.summary}`)
                  .then(() => update((s) => (s.panel = null)))
                  .catch(fail)
              }
            >
              {t("summary.post")}
            </button>
          </Fragment>
        )}
      </div>
    </aside>
  );
}

function Pinned({ channelId }) {
  const [posts, setPosts] = useState(null);
  useEffect(() => {
    http.get(`/api/v1/channels/${channelId}/pinned`).then(setPosts, fail);
  }, [channelId]);
  return (
    <aside class="panel" aria-labelledby="pinned-title">
      <PanelHeader id="pinned-title" title={t("channel.pinned")} />
      <div class="panel-body">{(posts || []).map((p) => <Post key={p.id} post={p} inThread />)}</div>
    </aside>
  );
}

/** Translation in this channel: its admins switch it on or off (posts are
 * then sent to the workspace's provider), each member has it for
 * themselves or not. */
function TranslationBar({ channel }) {
  const s = useStore();
  const provider = s.translation.provider;
  const mine = (s.members[channel.id] || []).find((m) => m.id === s.me?.id);
  const conversation = channel.kind === "direct" || channel.kind === "group";
  const admin = s.me?.role === "system_admin" || mine?.channelRole === "admin" || (conversation && channel.member);
  if (!admin && !channel.translation) return null;
  return (
    <div class="banner translation-bar" role="group" aria-label={t("translation.settings")}>
      {admin ? (
        <label title={t("translation.channelHelp", { provider })}>
          <input
            type="checkbox"
            checked={!!channel.translation}
            onChange={(e) => setChannelTranslation(channel.id, e.currentTarget.checked).catch(fail)}
          />{" "}
          {t("translation.channel")}
        </label>
      ) : (
        <span>{t("translation.on", { provider })}</span>
      )}
      {channel.translation && channel.member && (
        <label>
          <input
            type="checkbox"
            checked={!!channel.translate}
            onChange={(e) => setMyTranslation(channel.id, e.currentTarget.checked).catch(fail)}
          />{" "}
          {t("translation.mine")}
        </label>
      )}
    </div>
  );
}

export function ChannelView({ id }) {
  const s = useStore();
  const channel = s.channels[id];
  useEffect(() => {
    const onKey = (e) => e.key === "Escape" && s.panel && update((st) => (st.panel = null));
    addEventListener("keydown", onKey);
    return () => removeEventListener("keydown", onKey);
  }, [s.panel]);
  if (!channel) return <p class="loading">…</p>;
  const name = channelName(channel);
  const panel = s.panel;
  return (
    <div class={panel ? "channel with-panel" : "channel"}>
      <section class="conversation" aria-labelledby="channel-title">
        <header class="channel-header">
          <h1 id="channel-title">
            {channel.kind === "public" ? "#" : channel.kind === "private" ? "🔒 " : ""}
            {name}
          </h1>
          {channel.purpose && <p class="purpose">{channel.purpose}</p>}
          <div class="channel-tools">
            <button onClick={() => update((st) => (st.panel = { kind: "members" }))} aria-label={t("channel.members")}>
              👥 {(s.members[id] || []).length}
            </button>
            <button onClick={() => update((st) => (st.panel = { kind: "pinned" }))}>📌 {t("channel.pinned")}</button>
            {s.agents.length > 0 && (
              <button onClick={() => update((st) => (st.panel = { kind: "summary" }))}>✨ {t("channel.summarise")}</button>
            )}
            {channel.member && (channel.kind === "public" || channel.kind === "private") && (
              <button onClick={() => leaveChannel(id).catch(fail)}>{t("channel.leave")}</button>
            )}
          </div>
        </header>
        {channel.sharedWith?.length > 0 && (
          <p class="banner shared-banner" role="note">
            ⇄ {t("channel.sharedWith", { organisations: channel.sharedWith.join(", ") })}
          </p>
        )}
        {channel.header && <p class="banner">{channel.header}</p>}
        {s.translation && <TranslationBar channel={channel} />}
        {channel.member && <CallBar channelId={id} />}
        <History channelId={id} />
        <Typing channelId={id} />
        {channel.member ? (
          !channel.archivedAt && <Composer channelId={id} label={t("composer.label", { name })} key={id} />
        ) : (
          <button class="primary join" onClick={() => joinChannel(id).catch(fail)}>
            {t("channel.join")}
          </button>
        )}
      </section>
      {panel?.kind === "thread" && <Thread rootId={panel.rootId} channelId={id} />}
      {panel?.kind === "members" && <Members channelId={id} />}
      {panel?.kind === "pinned" && <Pinned channelId={id} />}
      {panel?.kind === "summary" && <Summary channelId={id} key={id} />}
    </div>
  );
}
