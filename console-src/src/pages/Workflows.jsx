// Workflows: list, view, enable/disable (saying what becomes of the runs already started),
// edit the definition with server-side validation.
import { useEffect, useState } from "react";
import { api, itemsOf } from "../api.js";
import { href, navigate } from "../router.js";
import { Empty, ErrorBox, Json, Loading, StatusBadge, Time, useApi } from "../ui.jsx";

function kindsOf(w) {
  const t = w.trigger || (w.definition && w.definition.trigger) || {};
  const kinds = t.kinds || t.kind || [];
  return Array.isArray(kinds) ? kinds : [kinds];
}

/** A step's timing as written: `before_start 1h`. */
function atText(at) {
  if (typeof at !== "object") return String(at);
  return Object.entries(at)
    .map(([k, v]) => `${k.replace("_", " ")} ${v}`)
    .join(", ");
}

/** What became of the runs already started, after a toggle (the API's `runs_waiting`). */
function toggleNote(res) {
  const n = res.runs_waiting || 0;
  const runs = `${n} run${n === 1 ? "" : "s"}`;
  if (res.enabled) return n ? `Enabled; ${runs} of it waiting.` : "Enabled.";
  if (!n) return "Disabled: it starts no new run (none of its runs is waiting).";
  const [keep, run, them] = n === 1 ? ["keeps", "runs", "it"] : ["keep", "run", "them"];
  return `Disabled: it starts no new run. ${runs} already started ${keep} waiting and ${run} when due; delete the workflow to cancel ${them}.`;
}

function EnableSwitch({ workflow, onChanged }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [note, setNote] = useState(null);
  const toggle = async () => {
    setBusy(true);
    setError(null);
    setNote(null);
    try {
      const res = await api(
        "POST",
        `/workflows/${workflow.id}/${workflow.enabled ? "disable" : "enable"}`,
      );
      setNote(toggleNote(res || {}));
      onChanged();
    } catch (exc) {
      setError(exc);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <label className="switch" title={workflow.enabled ? "Disable" : "Enable"}>
        <input
          type="checkbox"
          role="switch"
          aria-label={`${workflow.name} enabled`}
          checked={!!workflow.enabled}
          disabled={busy}
          onChange={toggle}
        />
        <span className="slider" aria-hidden="true" />
        <span className="switch-label">{workflow.enabled ? "enabled" : "disabled"}</span>
      </label>
      {note && (
        <div className="alert alert-ok toggle-note" role="status" data-workflow={workflow.name}>
          {note}
        </div>
      )}
      <ErrorBox error={error} />
    </>
  );
}

/** The request body for the editor's text: JSON when it parses as JSON, else YAML
 * (the server reads both; its messages name the fields either way). */
function documentOf(text) {
  try {
    return { body: JSON.parse(text), contentType: undefined };
  } catch {
    return { body: text, contentType: "application/yaml" };
  }
}

/** The definition editor: JSON or YAML text, checked by the server (`/workflows/validate`). */
function Editor({ initial, onSave, saveLabel, busy }) {
  const [text, setText] = useState(() => JSON.stringify(initial, null, 2));
  const [problems, setProblems] = useState(null);
  const [checked, setChecked] = useState(null);
  useEffect(() => setText(JSON.stringify(initial, null, 2)), [initial]);

  const validate = async () => {
    setChecked(null);
    setProblems(null);
    const { body, contentType } = documentOf(text);
    try {
      const res = await api("POST", "/workflows/validate", body, { contentType });
      if (res && res.valid === false) {
        setProblems({ message: "The definition is invalid", details: res.errors || [] });
      } else setChecked(res || { valid: true });
    } catch (exc) {
      setProblems(exc);
    }
  };
  const save = async () => {
    setChecked(null);
    setProblems(null);
    try {
      await onSave(documentOf(text));
    } catch (exc) {
      setProblems(exc);
    }
  };
  return (
    <div className="editor">
      <label className="control-label" htmlFor="definition">
        Definition (JSON or YAML)
      </label>
      <textarea
        id="definition"
        className="form-control code"
        spellCheck={false}
        rows={Math.min(40, Math.max(12, text.split("\n").length + 1))}
        value={text}
        onChange={(e) => {
          setText(e.target.value);
          setChecked(null);
        }}
      />
      <div className="actions">
        <button type="button" className="btn" onClick={validate}>
          Validate
        </button>
        <button type="button" className="btn btn-primary" onClick={save} disabled={busy}>
          {busy ? "Saving…" : saveLabel}
        </button>
      </div>
      {checked && (
        <div className="alert alert-ok" role="status">
          The definition is valid.
        </div>
      )}
      {problems && (
        <div className="alert alert-error validation" role="alert">
          <strong>{problems.message}</strong>
          <ul className="field-errors">
            {(problems.details || []).map((d, i) => (
              <li key={i} data-field={d.field}>
                <code className="field">{d.field || "(definition)"}</code> {d.message}
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}

function WorkflowDetail({ id }) {
  const wf = useApi(`/workflows/${encodeURIComponent(id)}`);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(null);
  const w = wf.data;
  const save = async ({ body, contentType }) => {
    setBusy(true);
    setSaved(null);
    try {
      const res = await api("PUT", `/workflows/${encodeURIComponent(w.id)}`, body, { contentType });
      setSaved(res);
      wf.reload();
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="page">
      <p>
        <a href="#/workflows">← Workflows</a>
      </p>
      <ErrorBox error={wf.error} />
      {wf.loading && !w && <Loading />}
      {w && (
        <>
          <header className="page-head">
            <div>
              <h1>{w.name}</h1>
              <p className="muted">
                version {w.version} · updated <Time iso={w.updated_at} /> · <code>{w.id}</code>
              </p>
            </div>
            <EnableSwitch workflow={w} onChanged={wf.reload} />
          </header>
          <div className="grid-2">
            <section className="card">
              <h2>Trigger</h2>
              <Json value={w.trigger || (w.definition && w.definition.trigger)} />
              <h2>Steps</h2>
              <ol className="steps-list">
                {((w.definition && w.definition.steps) || []).map((s) => (
                  <li key={s.id}>
                    <strong>{s.id}</strong> <code>{s.action}</code>{" "}
                    {s.integration && <span className="muted">via {s.integration}</span>}{" "}
                    {s.at && <span className="badge tone-info">{atText(s.at)}</span>}
                  </li>
                ))}
              </ol>
              <p>
                <a href={href("/runs", { workflow: w.name })}>Runs of this workflow →</a>
              </p>
            </section>
            <section className="card">
              <h2>Edit</h2>
              {saved && (
                <div className="alert alert-ok" role="status">
                  {saved.result === "unchanged" ? "Nothing changed" : `Saved as version ${saved.version}`}.
                </div>
              )}
              <Editor initial={w.definition} onSave={save} saveLabel="Save" busy={busy} />
            </section>
          </div>
        </>
      )}
    </div>
  );
}

const TEMPLATE = {
  name: "my-reminder",
  trigger: { kinds: ["created"] },
  steps: [
    {
      id: "remind",
      action: "twilio.SendSms",
      integration: "sms",
      input: { to: "{{ attendee.phone }}", body: "See you at {{ start }}" },
      at: { before_start: "1h" },
    },
  ],
};

function NewWorkflow({ onCreated }) {
  const [busy, setBusy] = useState(false);
  const create = async ({ body, contentType }) => {
    setBusy(true);
    try {
      const res = await api("POST", "/workflows", body, { contentType });
      onCreated(res);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="card drawer">
      <h2>New workflow</h2>
      <Editor initial={TEMPLATE} onSave={create} saveLabel="Create" busy={busy} />
    </section>
  );
}

export function Workflows({ route }) {
  const list = useApi(route.parts[1] ? null : "/workflows");
  const [creating, setCreating] = useState(false);
  if (route.parts[1]) return <WorkflowDetail id={route.parts[1]} />;
  const items = itemsOf(list.data);
  return (
    <div className="page">
      <header className="page-head">
        <div>
          <h1>Workflows</h1>
          <p className="muted">A trigger (booking event kinds and filters) and the steps that follow it.</p>
        </div>
        <button type="button" className="btn btn-primary" onClick={() => setCreating((c) => !c)}>
          New workflow
        </button>
      </header>
      {creating && (
        <NewWorkflow
          onCreated={(w) => {
            setCreating(false);
            const id = (w && (w.id || (w.workflow && w.workflow.id))) || null;
            if (id) navigate(`/workflows/${id}`);
            else list.reload();
          }}
        />
      )}
      <ErrorBox error={list.error} />
      {list.loading && !list.data && <Loading />}
      {list.data && items.length === 0 && <Empty>No workflows yet.</Empty>}
      {items.length > 0 && (
        <table className="table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Trigger</th>
              <th>Steps</th>
              <th>Version</th>
              <th>Updated</th>
              <th>Enabled</th>
            </tr>
          </thead>
          <tbody>
            {items.map((w) => (
              <tr key={w.id} data-workflow={w.name}>
                <td>
                  <a href={href(`/workflows/${w.id}`)}>{w.name}</a>
                </td>
                <td>
                  {kindsOf(w).map((k) => (
                    <StatusBadge key={k} status={k} />
                  ))}
                </td>
                <td>{(w.steps || []).map((s) => (typeof s === "string" ? s : s.id)).join(" → ")}</td>
                <td>{w.version}</td>
                <td>
                  <Time iso={w.updated_at} />
                </td>
                <td>
                  <EnableSwitch workflow={w} onChanged={list.reload} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
