import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { Admin } from "./admin.jsx";
import { ChannelView } from "./channel.jsx";
import { languages, language, setLanguage, t } from "./i18n.js";
import { Browse, CreateChannel, NewMessage, SearchResults } from "./pages.jsx";
import { get } from "./api.js";
import { Field } from "./ui.jsx";
import {
  channelName,
  fail,
  navigate,
  redeem,
  restoreSession,
  setReadingLanguage,
  signIn,
  signOut,
  update,
  useStore,
} from "./store.js";

// --- theme -------------------------------------------------------------------

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
}
applyTheme(
  localStorage.getItem("entente.theme") ||
    (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"),
);

function toggleTheme() {
  const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
  localStorage.setItem("entente.theme", next);
  applyTheme(next);
}

// --- sign-in -------------------------------------------------------------------

function Login() {
  const s = useStore();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(s.route.kind === "signin-error" ? s.route.arg : null);
  const [providers, setProviders] = useState(null);
  useEffect(() => {
    get("/api/v1/auth/providers").then(setProviders, () => setProviders({ local: true }));
  }, []);
  async function submit(e) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setBusy(true);
    setError(null);
    try {
      await signIn(form.get("username"), form.get("password"));
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  }
  // The form appears once the page knows how people sign in here, so
  // focus lands on the right first control (the button or the username).
  if (providers === null) return <p class="loading">{t("status.connecting")}</p>;
  return (
    <main class="login" id="main">
      <form class="card" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">{t("login.title", { workspace: t("app.name") })}</h1>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        {providers?.oidc && (
          <p>
            {/* A full page load: the identity provider takes over. */}
            <a class="button primary sso" href={providers.oidc.url} autofocus>
              {providers.oidc.text}
            </a>
          </p>
        )}
        {providers?.oidc && <p class="or">{t(providers.local ? "login.or" : "login.breakGlass")}</p>}
        <Field
          label={t("login.username")}
          id="username"
          autocomplete="username"
          required
          autofocus={!providers.oidc}
        />
        <Field label={t("login.password")} id="password" type="password" autocomplete="current-password" required />
        <button type="submit" class={providers?.oidc ? "" : "primary"} disabled={busy}>
          {busy ? t("login.busy") : t("login.submit")}
        </button>
        <p>
          <a href="#/invite">{t("login.invited")}</a>
        </p>
        <LanguagePicker />
      </form>
    </main>
  );
}

function Invite() {
  const [error, setError] = useState(null);
  async function submit(e) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    try {
      await redeem(f.get("token"), f.get("username"), f.get("password"), f.get("displayName"));
    } catch (err) {
      setError(err.message);
    }
  }
  return (
    <main class="login" id="main">
      <form class="card" onSubmit={submit} aria-labelledby="invite-title">
        <h1 id="invite-title">{t("invite.title")}</h1>
        <Field label={t("invite.token")} id="token" required autocomplete="off" />
        <Field label={t("login.username")} id="username" required autocomplete="username" pattern="[a-z0-9][a-z0-9._\-]{0,63}" />
        <Field label={t("invite.displayName")} id="displayName" autocomplete="name" />
        <Field label={t("login.password")} id="password" type="password" required autocomplete="new-password" />
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary">
          {t("invite.submit")}
        </button>
        <p>
          <a href="#/">{t("login.submit")}</a>
        </p>
      </form>
    </main>
  );
}

function LanguagePicker() {
  const [, refresh] = useState(0);
  return (
    <div class="field inline">
      <label for="language">{t("language")}</label>
      <select
        id="language"
        value={language()}
        onChange={(e) => {
          setLanguage(e.currentTarget.value);
          refresh((n) => n + 1);
          update();
        }}
      >
        {languages.map(([code, name]) => (
          <option value={code} key={code}>
            {name}
          </option>
        ))}
      </select>
    </div>
  );
}

// --- the signed-in layout ------------------------------------------------------

function Badge({ channel }) {
  if (channel.mentions > 0)
    return (
      <span class="badge mention-badge" aria-label={t("badge.mentions", { count: channel.mentions })}>
        {channel.mentions}
      </span>
    );
  if (channel.unread > 0)
    return (
      <span class="badge" aria-label={t("badge.unread", { count: channel.unread })}>
        {channel.unread}
      </span>
    );
  return null;
}

function Sidebar({ open, close }) {
  const s = useStore();
  const mine = Object.values(s.channels).filter((c) => c.member && !c.archivedAt);
  const groups = [
    [t("sidebar.channels"), mine.filter((c) => c.kind === "public" || c.kind === "private")],
    [t("sidebar.direct"), mine.filter((c) => c.kind === "direct" || c.kind === "group")],
  ];
  const current = s.route.kind === "c" ? s.route.arg : null;
  return (
    <nav class={open ? "sidebar open" : "sidebar"} aria-label={t("sidebar.label")} aria-busy={!s.loaded} onClick={close}>
      {groups.map(([title, list]) => (
        <section key={title} aria-label={title}>
          <h2>{title}</h2>
          <ul>
            {list.map((c) => (
              <li key={c.id}>
                <a
                  href={`#/c/${c.id}`}
                  class={`${c.unread > 0 ? "unread" : ""} ${c.id === current ? "current" : ""}`}
                  aria-current={c.id === current ? "page" : undefined}
                  data-channel={c.name || c.id}
                >
                  <span class="sigil" aria-hidden="true">
                    {c.kind === "private" ? "🔒" : c.kind === "public" ? "#" : "@"}
                  </span>
                  <span class="name">{channelName(c)}</span>
                  {c.sharedWith?.length > 0 && (
                    <span class="shared" title={c.sharedWith.join(", ")} aria-hidden="true">
                      ⇄
                    </span>
                  )}
                  <Badge channel={c} />
                </a>
              </li>
            ))}
          </ul>
        </section>
      ))}
      <ul class="actions">
        <li>
          <a href="#/browse">{t("sidebar.browse")}</a>
        </li>
        <li>
          <a href="#/create">{t("sidebar.create")}</a>
        </li>
        <li>
          <a href="#/dm">{t("sidebar.newMessage")}</a>
        </li>
        {s.me.role === "system_admin" && (
          <li>
            <a href="#/admin/users">{t("sidebar.admin")}</a>
          </li>
        )}
      </ul>
    </nav>
  );
}

function Header({ toggleSidebar }) {
  const s = useStore();
  const [q, setQ] = useState("");
  return (
    <header class="top">
      <button class="icon menu" onClick={toggleSidebar} aria-label={t("sidebar.label")}>
        ☰
      </button>
      <strong class="brand">{t("app.name")}</strong>
      <form
        role="search"
        class="search"
        onSubmit={(e) => {
          e.preventDefault();
          if (q.trim()) navigate(`#/search/${encodeURIComponent(q.trim())}`);
        }}
      >
        <label for="search" class="visually-hidden">
          {t("search.label")}
        </label>
        <input id="search" type="search" placeholder={t("search.placeholder")} value={q} onInput={(e) => setQ(e.currentTarget.value)} />
      </form>
      <span class={`status status-${s.status}`} role="status" aria-live="polite">
        {s.status === "live" ? <span class="visually-hidden">{t("status.live")}</span> : t(`status.${s.status}`)}
      </span>
      <button class="icon" onClick={toggleTheme} aria-label={t("theme.toggle")} title={t("theme.toggle")}>
        ◐
      </button>
      {s.translation && (
        <label class="reading">
          {t("translation.language")}{" "}
          <select
            value={s.me.language || ""}
            onChange={(e) => setReadingLanguage(e.currentTarget.value || null).catch(fail)}
          >
            <option value="">{s.translation.defaultLanguage}</option>
            {s.translation.languages
              .filter((l) => l !== s.translation.defaultLanguage)
              .map((l) => (
                <option value={l} key={l}>
                  {l}
                </option>
              ))}
          </select>
        </label>
      )}
      <span class="me" data-user={s.me.username}>
        {s.me.displayName || s.me.username}
      </span>
      <button onClick={() => signOut()}>{t("logout")}</button>
    </header>
  );
}

function Main() {
  const s = useStore();
  const { kind, arg } = s.route;
  switch (kind) {
    case "c":
      return <ChannelView id={arg} />;
    case "browse":
      return <Browse />;
    case "create":
      return <CreateChannel />;
    case "dm":
      return <NewMessage />;
    case "search":
      return <SearchResults q={arg} />;
    case "admin":
      return s.me.role === "system_admin" ? <Admin page={arg || "users"} /> : null;
    default:
      return (
        <section class="empty">
          <p>{t("channel.empty")}</p>
        </section>
      );
  }
}

function App() {
  const s = useStore();
  const [sidebar, setSidebar] = useState(false);
  useEffect(() => {
    restoreSession();
  }, []);
  useEffect(() => {
    if (!s.error) return;
    const timer = setTimeout(() => update((st) => (st.error = null)), 8000);
    return () => clearTimeout(timer);
  }, [s.error]);
  if (s.me === null) return <p class="loading">{t("status.connecting")}</p>;
  if (s.me === false) return s.route.kind === "invite" ? <Invite /> : <Login key="login" />;
  return (
    <div class="layout">
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById("composer")?.focus())}>
        {t("skip")}
      </a>
      <Header toggleSidebar={() => setSidebar((v) => !v)} />
      <Sidebar open={sidebar} close={() => setSidebar(false)} />
      <main id="main" class="main">
        <Main />
      </main>
      {s.error && (
        <div class="toast" role="alert">
          {t("error.generic", { message: s.error })}
          <button class="icon" aria-label={t("panel.close")} onClick={() => update((st) => (st.error = null))}>
            ×
          </button>
        </div>
      )}
    </div>
  );
}

render(<App />, document.getElementById("app"));
