// The workspace's REST API, from the page. The session is an HttpOnly
// cookie the browser sends itself; requests that change something carry
// the CSRF token the sign-in returned (kept in memory only).

let csrf = null;
let unauthenticated = () => {};

/** What to do when the server no longer knows the session. */
export function onUnauthenticated(handler) {
  unauthenticated = handler;
}

export function setCsrf(token) {
  csrf = token || null;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code;
    this.field = body?.field;
  }
}

export async function api(method, path, body) {
  const headers = {};
  if (method !== "GET" && method !== "HEAD" && csrf) headers["X-CSRF-Token"] = csrf;
  let payload;
  if (body instanceof Blob) {
    payload = body;
    headers["Content-Type"] = body.type || "application/octet-stream";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  } catch (e) {
    throw new ApiError(0, { message: "the server cannot be reached" });
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (response.status === 401 && !path.startsWith("/api/v1/auth/")) unauthenticated();
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body ?? {});
export const put = (path, body) => api("PUT", path, body);
export const patch = (path, body) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);

/** `/a/b?x=1` from a path and the defined values of `params`. */
export function path(base, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `${base}?${s}` : base;
}
