// Custom RJSF widgets: x-fetcher fields as a searchable dropdown, booleans as switches.
import { useContext, useEffect, useMemo, useRef, useState } from "react";
import { api, itemsOf } from "../api.js";
import { FetchContext } from "./context.js";
import { getPath } from "./schema.js";

function toList(v) {
  if (!v) return [];
  return Array.isArray(v) ? v : [v];
}

function isBlank(v) {
  return v === undefined || v === null || v === "";
}

function same(a, b) {
  return !isBlank(a) && !isBlank(b) && String(a) === String(b);
}

/** Text typed by hand, as the schema's type (an integer field gets a number). */
function coerce(text, schema) {
  if (text === "") return undefined;
  const t = schema.type;
  if ((t === "integer" || t === "number") && /^\s*-?\d+(\.\d+)?\s*$/.test(text)) {
    const n = Number(text);
    if (t === "number" || Number.isInteger(n)) return n;
  }
  return text;
}

/** Options from the field's `x-fetcher`, reloaded when an `x-fetcher-depends-on` field
 * changes; searchable; on a fetch error the message shows in the dropdown and the field
 * takes a typed value, so the form stays usable. */
export function FetcherWidget(props) {
  const { id, value, onChange, onBlur, onFocus, schema, disabled, readonly, placeholder } = props;
  const { app, integration, formData } = useContext(FetchContext);
  const fetcher = schema["x-fetcher"];
  const deps = toList(schema["x-fetcher-depends-on"]);
  const depValues = deps.map((d) => getPath(formData, d));
  const missing = deps.filter((_, i) => isBlank(depValues[i]));
  const depKey = JSON.stringify(depValues);
  const [load, setLoad] = useState({ status: "idle", options: [], error: null });
  const [attempt, setAttempt] = useState(0);
  const [open, setOpen] = useState(false);
  const [search, setSearch] = useState("");
  const [active, setActive] = useState(0);
  const [draft, setDraft] = useState(null);
  const listRef = useRef(null);

  useEffect(() => {
    if (!integration) {
      setLoad({ status: "no-integration", options: [], error: null });
      return undefined;
    }
    if (missing.length) {
      setLoad({ status: "waiting", options: [], error: null });
      return undefined;
    }
    const ac = new AbortController();
    setLoad((s) => ({ status: "loading", options: s.options, error: null }));
    const context = Object.fromEntries(deps.map((d, i) => [d.split(".").pop(), depValues[i]]));
    const timer = setTimeout(
      () => {
        api("POST", `/fetchers/${app}/${fetcher}`, { integration, context }, { signal: ac.signal })
          .then((d) => setLoad({ status: "ready", options: itemsOf(d, "options"), error: null }))
          .catch((error) => {
            if (error.name !== "AbortError") setLoad({ status: "error", options: [], error });
          });
      },
      deps.length ? 250 : 0,
    );
    return () => {
      clearTimeout(timer);
      ac.abort();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [app, integration, fetcher, depKey, attempt]);

  const options = load.options;
  const pickMode = load.status === "ready" && options.length > 0;
  const selected = options.find((o) => same(o.value, value));
  const filtered = useMemo(() => {
    const q = search.trim().toLowerCase();
    const hits = q
      ? options.filter((o) =>
          [o.label, o.value, o.description].some((x) => String(x ?? "").toLowerCase().includes(q)),
        )
      : options;
    return hits.slice(0, 300);
  }, [options, search]);

  const pick = (o) => {
    onChange(o.value);
    setOpen(false);
    setSearch("");
  };

  const onKeyDown = (e) => {
    if (!pickMode) return;
    if (e.key === "ArrowDown") {
      e.preventDefault();
      setOpen(true);
      setActive((a) => Math.min(a + 1, filtered.length - 1));
    } else if (e.key === "ArrowUp") {
      e.preventDefault();
      setActive((a) => Math.max(a - 1, 0));
    } else if (e.key === "Enter") {
      e.preventDefault();
      if (open && filtered[active]) pick(filtered[active]);
    } else if (e.key === "Escape") {
      setOpen(false);
      setSearch("");
    }
  };

  useEffect(() => {
    const el = listRef.current && listRef.current.children[active];
    if (el && el.scrollIntoView) el.scrollIntoView({ block: "nearest" });
  }, [active]);

  const shown = isBlank(value) ? "" : selected ? selected.label : String(value);
  const listId = `${id}__options`;
  const depNames = missing.join(", ");
  return (
    <div className={`fetcher fetcher-${load.status}`} data-fetcher={fetcher}>
      <div className="fetcher-input">
        <input
          id={id}
          className="form-control"
          type="text"
          role="combobox"
          autoComplete="off"
          aria-expanded={pickMode && open}
          aria-controls={listId}
          aria-autocomplete="list"
          disabled={disabled || readonly}
          placeholder={
            pickMode ? "Search…" : placeholder || (load.status === "error" ? "Type a value" : "")
          }
          value={pickMode ? (open ? search : shown) : draft ?? (isBlank(value) ? "" : String(value))}
          onFocus={() => {
            if (pickMode) {
              setOpen(true);
              setSearch("");
              setActive(Math.max(0, filtered.findIndex((o) => same(o.value, value))));
            }
            onFocus && onFocus(id, value);
          }}
          onBlur={() => {
            setOpen(false);
            setDraft(null);
            onBlur && onBlur(id, value);
          }}
          onChange={(e) => {
            if (pickMode) {
              setSearch(e.target.value);
              setActive(0);
              setOpen(true);
            } else {
              setDraft(e.target.value);
              onChange(coerce(e.target.value, schema));
            }
          }}
          onKeyDown={onKeyDown}
        />
        {pickMode && !isBlank(value) && !disabled && !readonly && (
          <button
            type="button"
            className="btn-icon"
            aria-label="Clear"
            title="Clear"
            onMouseDown={(e) => e.preventDefault()}
            onClick={() => onChange(undefined)}
          >
            ×
          </button>
        )}
      </div>
      {pickMode && open && (
        <ul className="fetcher-options" role="listbox" id={listId} ref={listRef}>
          {filtered.length === 0 && <li className="muted none">No option matches “{search}”</li>}
          {filtered.map((o, i) => (
            <li
              key={`${o.value}`}
              role="option"
              aria-selected={same(o.value, value)}
              className={i === active ? "active" : ""}
              data-value={String(o.value)}
              onMouseDown={(e) => {
                e.preventDefault();
                pick(o);
              }}
              onMouseEnter={() => setActive(i)}
            >
              <span className="opt-label">{o.label}</span>
              {o.description && <span className="opt-desc">{o.description}</span>}
            </li>
          ))}
        </ul>
      )}
      <div className="fetcher-status" aria-live="polite">
        {load.status === "loading" && <span className="muted">Loading options…</span>}
        {load.status === "waiting" && <span className="muted">Fill in {depNames} to load the options.</span>}
        {load.status === "no-integration" && <span className="muted">Pick an integration to load the options.</span>}
        {load.status === "ready" && (
          <span className="muted">
            {options.length === 0
              ? "The fetcher returned no options; type a value."
              : `${options.length} option${options.length === 1 ? "" : "s"} from ${fetcher}`}
            {!isBlank(value) && options.length > 0 && !selected && " · the value is not in the list"}
          </span>
        )}
        {load.status === "error" && (
          <span className="fetcher-error" role="alert">
            Could not load options from <code>{fetcher}</code>
            {load.error.code ? ` (${load.error.code})` : ""}: {load.error.message}. Type a value
            instead.
          </span>
        )}
        {(load.status === "ready" || load.status === "error") && (
          <button type="button" className="btn-link" onClick={() => setAttempt((a) => a + 1)}>
            {load.status === "error" ? "Retry" : "Reload"}
          </button>
        )}
      </div>
    </div>
  );
}

/** A boolean as a switch. */
export function SwitchWidget(props) {
  const { id, value, onChange, disabled, readonly, label, schema, onBlur, onFocus } = props;
  return (
    <label className="switch" htmlFor={id}>
      <input
        id={id}
        type="checkbox"
        role="switch"
        checked={!!value}
        aria-checked={!!value}
        disabled={disabled || readonly}
        onChange={(e) => onChange(e.target.checked)}
        onBlur={() => onBlur && onBlur(id, value)}
        onFocus={() => onFocus && onFocus(id, value)}
      />
      <span className="slider" aria-hidden="true" />
      <span className="switch-label">{label || schema.title}</span>
    </label>
  );
}
