// Small shared pieces: data loading hook, badges, JSON, times, error boxes.
import { useCallback, useEffect, useRef, useState } from "react";
import { api } from "./api.js";

/** GET `path` (re-run when `path` or `deps` change); `{data, error, loading, reload}`. */
export function useApi(path, deps = []) {
  const [state, setState] = useState({ data: null, error: null, loading: !!path });
  const [n, setN] = useState(0);
  const reload = useCallback(() => setN((x) => x + 1), []);
  useEffect(() => {
    if (!path) {
      setState({ data: null, error: null, loading: false });
      return undefined;
    }
    const ac = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    api("GET", path, undefined, { signal: ac.signal })
      .then((data) => setState({ data, error: null, loading: false }))
      .catch((error) => {
        if (error.name !== "AbortError") setState({ data: null, error, loading: false });
      });
    return () => ac.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [path, n, ...deps]);
  return { ...state, reload };
}

/** Call `fn` every `ms` while `active`. */
export function useInterval(fn, ms, active = true) {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    if (!active) return undefined;
    const t = setInterval(() => saved.current(), ms);
    return () => clearInterval(t);
  }, [ms, active]);
}

export function ErrorBox({ error, title }) {
  if (!error) return null;
  return (
    <div className="alert alert-error" role="alert">
      <strong>{title || "Error"}</strong>{" "}
      {error.code && <code className="code-chip">{error.code}</code>} {error.message}
      {error.details && error.details.length > 0 && (
        <ul className="details">
          {error.details.map((d, i) => (
            <li key={i}>
              {d.field ? <code>{d.field}</code> : null} {d.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Loading({ what = "Loading" }) {
  return <p className="muted loading">{what}…</p>;
}

const OK_PORTS = new Set(["success", "sent", "ok", "succeeded"]);

/** The tone of a port: ok (green), warn (amber: conflict, not_found…), bad (red: error). */
export function portTone(port, { success, error } = {}) {
  if (error || success === false || port === "error") return "bad";
  if (OK_PORTS.has(port)) return "ok";
  return "warn";
}

export function PortBadge({ port, success, error }) {
  if (!port) return <span className="muted">—</span>;
  return (
    <span className={`badge port tone-${portTone(port, { success, error })}`} data-port={port}>
      {port}
    </span>
  );
}

const STATUS_TONES = {
  succeeded: "ok",
  completed: "ok",
  done: "ok",
  finished: "ok",
  enabled: "ok",
  waiting: "info",
  running: "info",
  pending: "info",
  queued: "info",
  failed: "bad",
  dead: "bad",
  error: "bad",
  cancelled: "muted",
  skipped: "muted",
  disabled: "muted",
};

export function StatusBadge({ status }) {
  if (!status) return null;
  return <span className={`badge status tone-${STATUS_TONES[status] || "muted"}`}>{status}</span>;
}

export function Json({ value, className = "" }) {
  if (value === undefined) return <span className="muted">—</span>;
  return <pre className={`json ${className}`}>{JSON.stringify(value, null, 2)}</pre>;
}

export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

export function relTime(iso, now = Date.now()) {
  if (!iso) return "";
  const d = new Date(iso).getTime();
  if (Number.isNaN(d)) return "";
  const s = Math.round((d - now) / 1000);
  const abs = Math.abs(s);
  const [n, unit] =
    abs < 60 ? [abs, "s"] : abs < 3600 ? [Math.round(abs / 60), "min"] : abs < 86400 * 2
      ? [Math.round(abs / 3600), "h"] : [Math.round(abs / 86400), "d"];
  return s >= 0 ? `in ${n} ${unit}` : `${n} ${unit} ago`;
}

export function Time({ iso }) {
  if (!iso) return <span className="muted">—</span>;
  return (
    <time dateTime={iso} title={iso}>
      {fmtTime(iso)} <span className="muted">({relTime(iso)})</span>
    </time>
  );
}

export function Empty({ children }) {
  return <p className="empty muted">{children}</p>;
}

export function Field({ label, children, htmlFor }) {
  return (
    <div className="form-group">
      <label className="control-label" htmlFor={htmlFor}>
        {label}
      </label>
      {children}
    </div>
  );
}
