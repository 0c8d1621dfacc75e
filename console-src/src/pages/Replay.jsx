// Replay: page through a provider's history into calflow or to a webhook URL; live
// progress while it runs, then the summary.
import { useMemo, useState } from "react";
import { api, itemsOf } from "../api.js";
import { SchemaForm } from "../form/SchemaForm.jsx";
import { errorSchemaFrom } from "../form/schema.js";
import { href, navigate } from "../router.js";
import { Empty, ErrorBox, Json, Loading, StatusBadge, Time, useApi, useInterval } from "../ui.jsx";

const PROVIDERS = new Set(["cal_com", "savvycal"]);
const FINISHED = new Set(["completed", "succeeded", "done", "finished", "failed", "cancelled", "interrupted"]);

function replaySchema(integrations) {
  return {
    type: "object",
    required: ["integration", "target"],
    properties: {
      integration: {
        type: "string",
        title: "Integration to read",
        oneOf: integrations.map((i) => ({ const: i.id, title: `${i.name} (${i.app})` })),
      },
      target: {
        type: "string",
        title: "Send to",
        enum: ["calflow", "url"],
        default: "calflow",
      },
      to: { type: "string", format: "uri", title: "Webhook URL (when sending to a URL)" },
      since: { type: "string", format: "date-time", title: "Since" },
      until: { type: "string", format: "date-time", title: "Until" },
      kinds: {
        type: "array",
        title: "Kinds",
        uniqueItems: true,
        items: { type: "string", enum: ["created", "rescheduled", "cancelled"] },
      },
      limit: { type: "integer", minimum: 1, title: "At most this many items" },
      dry_run: { type: "boolean", title: "Dry run (count, send nothing)", default: false },
    },
  };
}

const UI = {
  target: { "ui:enumNames": ["Into calflow's event bus", "To a webhook URL"] },
  kinds: { "ui:widget": "checkboxes" },
};

function totalsOf(job) {
  return job.totals || job.progress || {};
}

function Progress({ job }) {
  const t = totalsOf(job);
  const done = FINISHED.has(job.status);
  const seen = t.items ?? (t.sent || 0) + (t.skipped || 0) + (t.failed || 0);
  const total = t.total ?? job.total ?? null;
  const pct = total ? Math.min(100, Math.round((100 * seen) / total)) : done ? 100 : null;
  return (
    <div className="progress-block" data-status={job.status}>
      <div
        className={`progress ${pct === null ? "indeterminate" : ""}`}
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={pct ?? undefined}
      >
        <div className="bar" style={{ width: pct === null ? "30%" : `${pct}%` }} />
      </div>
      <dl className="counters">
        <div>
          <dt>items</dt>
          <dd data-counter="items">{seen}</dd>
        </div>
        <div>
          <dt>sent</dt>
          <dd data-counter="sent">{t.sent ?? 0}</dd>
        </div>
        <div>
          <dt>skipped</dt>
          <dd data-counter="skipped">{t.skipped ?? 0}</dd>
        </div>
        <div>
          <dt>failed</dt>
          <dd data-counter="failed">{t.failed ?? 0}</dd>
        </div>
        {job.duration_s !== undefined && (
          <div>
            <dt>seconds</dt>
            <dd>{Number(job.duration_s).toFixed(1)}</dd>
          </div>
        )}
      </dl>
    </div>
  );
}

function JobView({ id }) {
  const job = useApi(`/replays/${encodeURIComponent(id)}`);
  const j = job.data;
  const active = !!j && !FINISHED.has(j.status);
  useInterval(job.reload, 1000, active);
  const [error, setError] = useState(null);
  const act = async (what) => {
    setError(null);
    try {
      await api("POST", `/replays/${encodeURIComponent(id)}/${what}`);
      job.reload();
    } catch (exc) {
      setError(exc);
    }
  };
  return (
    <div className="page">
      <p>
        <a href="#/replay">← Replay</a>
      </p>
      <ErrorBox error={job.error || error} />
      {job.loading && !j && <Loading />}
      {j && (
        <>
          <header className="page-head">
            <div>
              <h1>
                Replay <StatusBadge status={j.status} />
              </h1>
              <p className="muted">
                <code>{j.job || j.id}</code> · {j.provider} → {j.target} · started <Time iso={j.created_at} />
              </p>
            </div>
            <div className="actions">
              {active && (
                <button type="button" className="btn btn-danger" onClick={() => act("cancel")}>
                  Cancel
                </button>
              )}
              {!active && j.status !== "completed" && j.status !== "succeeded" && (
                <button type="button" className="btn" onClick={() => act("resume")}>
                  Resume
                </button>
              )}
            </div>
          </header>
          <section className="card">
            <h2>{active ? "In progress" : "Summary"}</h2>
            <Progress job={j} />
            {j.error && <div className="alert alert-error">{j.error}</div>}
            {!active && j.summary && <Json value={j.summary} />}
          </section>
          <details className="card">
            <summary>Options</summary>
            <Json value={j.options} />
          </details>
        </>
      )}
    </div>
  );
}

function StartForm({ integrations, onStarted }) {
  const schema = useMemo(() => replaySchema(integrations), [integrations]);
  const [formData, setFormData] = useState({ integration: integrations[0] && integrations[0].id });
  const [error, setError] = useState(null);
  const [extraErrors, setExtraErrors] = useState(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (data) => {
    setBusy(true);
    setError(null);
    setExtraErrors(undefined);
    const body = { ...data };
    if (body.target === "calflow") {
      body.into = "calflow";
      delete body.to;
    }
    delete body.target;
    try {
      onStarted(await api("POST", "/replays", body));
    } catch (exc) {
      const { errors, general } = errorSchemaFrom(exc.details, schema);
      setExtraErrors(errors);
      setError({ ...exc, code: exc.code, message: exc.message, details: general });
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="card">
      <h2>Start a replay</h2>
      <SchemaForm
        idPrefix="replay"
        schema={schema}
        uiSchema={UI}
        formData={formData}
        onChange={setFormData}
        onSubmit={submit}
        extraErrors={extraErrors}
        submitLabel="Start replay"
        busy={busy}
      />
      <ErrorBox error={error} title="Not started" />
    </section>
  );
}

export function Replay({ route }) {
  const id = route.parts[1];
  const integrations = useApi(id ? null : "/integrations");
  const jobs = useApi(id ? null : "/replays");
  if (id) return <JobView id={id} />;
  const providers = itemsOf(integrations.data).filter((i) => PROVIDERS.has(i.app));
  const list = itemsOf(jobs.data);
  return (
    <div className="page">
      <header className="page-head">
        <div>
          <h1>Replay</h1>
          <p className="muted">
            Page through a provider's booking history and publish it into calflow, or POST it signed to
            any webhook URL (a backfill).
          </p>
        </div>
      </header>
      <ErrorBox error={integrations.error} />
      {integrations.data && providers.length === 0 && (
        <Empty>Add a Cal.com or SavvyCal integration to replay its history.</Empty>
      )}
      {providers.length > 0 && (
        <StartForm integrations={providers} onStarted={(j) => navigate(`/replay/${j.job || j.id}`)} />
      )}
      {list.length > 0 && (
        <section className="card">
          <h2>Recent replays</h2>
          <table className="table">
            <thead>
              <tr>
                <th>Started</th>
                <th>Provider</th>
                <th>Target</th>
                <th>Status</th>
                <th>Items</th>
              </tr>
            </thead>
            <tbody>
              {list.map((j) => (
                <tr key={j.job || j.id}>
                  <td>
                    <a href={href(`/replay/${j.job || j.id}`)}>
                      <Time iso={j.created_at} />
                    </a>
                  </td>
                  <td>{j.provider}</td>
                  <td>{j.target}</td>
                  <td>
                    <StatusBadge status={j.status} />
                  </td>
                  <td>{totalsOf(j).items ?? "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
    </div>
  );
}
