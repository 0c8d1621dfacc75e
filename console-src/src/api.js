// The REST API client: bearer token from sessionStorage, errors as ApiError.
const TOKEN_KEY = "calflow.token";
const listeners = new Set();

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  listeners.forEach((fn) => fn(token));
}

export function onTokenChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** An error answer: `{"error": {"code", "message", "details": [{"field", "message"}]}}`. */
export class ApiError extends Error {
  constructor(status, code, message, details = []) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = Array.isArray(details) ? details : [];
  }
}

/** `fetch` against /api/v1 with the token; the parsed JSON, or an ApiError. */
export async function api(method, path, body, { signal, token } = {}) {
  const headers = { Accept: "application/json" };
  const bearer = token ?? getToken();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const init = { method, headers, signal };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(`api/v1${path}`, init);
  } catch (exc) {
    if (exc.name === "AbortError") throw exc;
    throw new ApiError(0, "NETWORK", `calflow did not answer (${exc.message})`);
  }
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!resp.ok) {
    const err = (data && data.error) || {};
    if (resp.status === 401 && !token) setToken(null);
    throw new ApiError(
      resp.status,
      err.code || `HTTP_${resp.status}`,
      err.message || text || resp.statusText,
      err.details,
    );
  }
  return data;
}

/** A list answer as an array, whether the API wraps it (`{"items": […]}`) or not. */
export function itemsOf(data, key = "items") {
  if (Array.isArray(data)) return data;
  if (data && Array.isArray(data[key])) return data[key];
  if (data) {
    const firstList = Object.values(data).find(Array.isArray);
    if (firstList) return firstList;
  }
  return [];
}

export function query(params) {
  const q = new URLSearchParams();
  Object.entries(params).forEach(([k, v]) => {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  });
  const s = q.toString();
  return s ? `?${s}` : "";
}
