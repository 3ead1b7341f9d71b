// What a system admin does by hand: accounts and their attributes, guest
// invitations, the audit log, the access-policy simulator, and what the
// translation provider can do.

import { useEffect, useState } from "preact/hooks";
import * as http from "./api.js";
import { t, time } from "./i18n.js";
import { fail, useStore } from "./store.js";
import { Field, FormError } from "./ui.jsx";

const PAGES = ["users", "guests", "audit", "simulate"];

export function Admin({ page }) {
  const s = useStore();
  const pages = s.translation ? [...PAGES, "translation"] : PAGES;
  return (
    <section class="page admin" aria-labelledby="admin-title">
      <h1 id="admin-title">{t("admin.title")}</h1>
      <nav aria-label={t("admin.title")}>
        <ul class="tabs">
          {pages.map((p) => (
            <li key={p}>
              <a href={`#/admin/${p}`} aria-current={p === page ? "page" : undefined}>
                {t(`admin.${p}`)}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      {page === "users" && <Users />}
      {page === "guests" && <Guests />}
      {page === "audit" && <Audit />}
      {page === "simulate" && <Simulator />}
      {page === "translation" && <Translation />}
    </section>
  );
}

/** `key=value` lines to an object, and back. */
function parseAttributes(text) {
  const out = {};
  for (const line of text.split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}
const formatAttributes = (attrs) =>
  Object.entries(attrs || {})
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(",") : v}`)
    .join("\n");

function Users() {
  const [users, setUsers] = useState([]);
  const [error, setError] = useState(null);
  const reload = () =>
    http.get(http.path("/api/v1/users", { limit: 200, includeDeactivated: true })).then((p) => setUsers(p.users), fail);
  useEffect(() => {
    reload();
  }, []);
  async function create(e) {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    try {
      await http.post("/api/v1/users", {
        username: f.get("username"),
        password: f.get("password"),
        email: f.get("email") || undefined,
        displayName: f.get("displayName") || undefined,
        role: f.get("role"),
        attributes: parseAttributes(f.get("attributes") || ""),
      });
      form.reset();
      setError(null);
      reload();
    } catch (err) {
      setError(err.message);
    }
  }
  return (
    <>
      <form class="card" onSubmit={create} aria-labelledby="new-user">
        <h2 id="new-user">{t("admin.newUser")}</h2>
        <Field label={t("login.username")} id="username" required />
        <Field label={t("create.displayName")} id="displayName" />
        <Field label={t("admin.email")} id="email" type="email" />
        <Field label={t("login.password")} id="password" type="password" required autocomplete="new-password" />
        <div class="field">
          <label for="role">{t("admin.role")}</label>
          <select id="role" name="role">
            <option value="member">member</option>
            <option value="system_admin">system_admin</option>
          </select>
        </div>
        <div class="field">
          <label for="attributes">{t("admin.attributes")}</label>
          <textarea id="attributes" name="attributes" aria-describedby="attributes-hint" />
          <small id="attributes-hint">{t("admin.attributesHint")}</small>
        </div>
        <FormError error={error} />
        <button class="primary" type="submit">
          {t("admin.save")}
        </button>
      </form>
      <table class="table">
        <caption class="visually-hidden">{t("admin.users")}</caption>
        <thead>
          <tr>
            <th scope="col">{t("admin.user")}</th>
            <th scope="col">{t("admin.role")}</th>
            <th scope="col">{t("admin.attributes")}</th>
            <th scope="col">
              <span class="visually-hidden">{t("admin.action")}</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {users.map((u) => (
            <UserRow key={u.id} user={u} reload={reload} />
          ))}
        </tbody>
      </table>
    </>
  );
}

function UserRow({ user, reload }) {
  const [text, setText] = useState(formatAttributes(user.attributes));
  const id = `attrs-${user.id}`;
  const save = () =>
    http.put(`/api/v1/users/${user.id}/attributes`, parseAttributes(text)).then(reload, fail);
  const toggle = () =>
    http.post(`/api/v1/users/${user.id}/${user.deactivatedAt ? "reactivate" : "deactivate"}`).then(reload, fail);
  return (
    <tr data-user={user.username}>
      <th scope="row">
        {user.displayName} <span class="username">@{user.username}</span>
        {user.guest && <span class="tag guest">{t("members.guest")}</span>}
        {user.organisation && <span class="tag partner">{user.organisation}</span>}
      </th>
      <td>{user.role}</td>
      <td>
        <label for={id} class="visually-hidden">
          {t("admin.attributes")} {user.username}
        </label>
        <textarea id={id} rows={2} value={text} onInput={(e) => setText(e.currentTarget.value)} />
        <button onClick={save}>{t("admin.save")}</button>
      </td>
      <td>
        {user.role !== "remote" && (
          <button onClick={toggle}>{user.deactivatedAt ? t("admin.reactivate") : t("admin.deactivate")}</button>
        )}
      </td>
    </tr>
  );
}

function Guests() {
  const [invitation, setInvitation] = useState(null);
  const [error, setError] = useState(null);
  async function invite(e) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    try {
      setInvitation(
        await http.post("/api/v1/guests/invitations", {
          policy: f.get("policy"),
          email: f.get("email"),
          organisation: f.get("organisation") || undefined,
        }),
      );
      setError(null);
    } catch (err) {
      setError(err.message);
    }
  }
  return (
    <form class="card" onSubmit={invite}>
      <Field label={t("admin.policy")} id="policy" required />
      <Field label={t("admin.email")} id="email" type="email" required />
      <Field label="Organisation" id="organisation" />
      <FormError error={error} />
      <button class="primary" type="submit">
        {t("admin.invite")}
      </button>
      {invitation && (
        <p role="status" class="invitation">
          {t("admin.invited", { email: invitation.email, expires: time(invitation.expiresAt) })}{" "}
          <code>{invitation.token}</code>
        </p>
      )}
    </form>
  );
}

function Audit() {
  const [entries, setEntries] = useState([]);
  const [kind, setKind] = useState("");
  const load = (after, replace) =>
    http
      .get(http.path("/api/v1/admin/audit", { after, kind: kind || undefined, limit: 100 }))
      .then((list) => setEntries((old) => (replace ? list : [...old, ...list])), fail);
  useEffect(() => {
    load(undefined, true);
  }, [kind]);
  return (
    <>
      <Field label={t("admin.action")} id="kind" value={kind} placeholder="access." onChange={(e) => setKind(e.currentTarget.value)} />
      <table class="table">
        <caption class="visually-hidden">{t("admin.audit")}</caption>
        <thead>
          <tr>
            <th scope="col">{t("admin.when")}</th>
            <th scope="col">{t("admin.action")}</th>
            <th scope="col">{t("admin.actor")}</th>
            <th scope="col">{t("admin.target")}</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => (
            <tr key={e.seq}>
              <td>{time(e.at)}</td>
              <td>
                <code>{e.kind}</code>
              </td>
              <td>{e.actorId || "—"}</td>
              <td>
                {[e.userId, e.channelId, e.policy].filter(Boolean).join(" · ")} {e.reason}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {entries.length > 0 && <button onClick={() => load(entries[entries.length - 1].seq)}>{t("admin.more")}</button>}
    </>
  );
}

/** The provider, the pairs it offers, and those of the workspace's
 * languages it lacks (posts between them are not translated). */
function Translation() {
  const [status, setStatus] = useState(null);
  useEffect(() => {
    http.get("/api/v1/admin/translation").then(setStatus, fail);
  }, []);
  if (!status) return <p class="loading">…</p>;
  return (
    <dl class="translation-status">
      <dt>{t("admin.provider")}</dt>
      <dd>{status.provider}</dd>
      <dt>{t("admin.languages")}</dt>
      <dd>{status.languages.join(", ")}</dd>
      {status.problem && (
        <>
          <dt>{t("admin.problem")}</dt>
          <dd role="alert">{status.problem}</dd>
        </>
      )}
      <dt>{t("admin.pairs")}</dt>
      <dd>{status.pairs.join(", ") || "—"}</dd>
      <dt>{t("admin.missing")}</dt>
      <dd class="missing">{status.missing.join(", ") || "—"}</dd>
    </dl>
  );
}

function Simulator() {
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  async function simulate(e) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    try {
      setResult(
        await http.post("/api/v1/admin/access-policies/simulate", {
          policy: f.get("policy"),
          expression: f.get("expression") || undefined,
          channels: (f.get("channels") || "").split(/[\s,]+/).filter(Boolean),
          mode: f.get("mode"),
          remove: !!f.get("remove"),
        }),
      );
      setError(null);
    } catch (err) {
      setError(err.message);
    }
  }
  const rows = (title, list) => (
    <>
      <h3>
        {title} ({list.length})
      </h3>
      <ul>
        {list.map((c, i) => (
          <li key={i}>
            @{c.username} · ~{c.channel} — {c.reason}
          </li>
        ))}
      </ul>
    </>
  );
  return (
    <>
      <form class="card" onSubmit={simulate}>
        <Field label="Policy" id="policy" required />
        <div class="field">
          <label for="expression">Expression</label>
          <textarea id="expression" name="expression" placeholder='user.nation == "FR"' />
        </div>
        <Field label={t("admin.channel")} id="channels" placeholder="ops, intel" />
        <div class="field">
          <label for="mode">Mode</label>
          <select id="mode" name="mode">
            <option>Enforce</option>
            <option>Audit</option>
          </select>
        </div>
        <div class="field inline">
          <input type="checkbox" id="remove" name="remove" />
          <label for="remove">{t("post.delete")}</label>
        </div>
        <FormError error={error} />
        <button class="primary" type="submit">
          {t("admin.simulateSubmit")}
        </button>
      </form>
      {result && (
        <div class="card" role="status">
          {rows(t("admin.allowed"), result.gains)}
          {rows(t("admin.denied"), result.losses)}
        </div>
      )}
    </>
  );
}
