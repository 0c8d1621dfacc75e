// Runs: the workflow runs, and each one's step-by-step trace and upcoming steps.
import { useEffect, useState } from "react";
import { api, itemsOf, query } from "../api.js";
import { href, navigate } from "../router.js";
import { Empty, ErrorBox, Json, Loading, PortBadge, StatusBadge, Time, useApi, useInterval } from "../ui.jsx";

const STATUSES = ["waiting", "running", "succeeded", "failed", "cancelled", "skipped"];
const ACTIVE = new Set(["pending", "waiting", "running", "queued"]);

function Step({ s }) {
  const failed = s.status === "failed" || s.error;
  return (
    <li className={`card trace-step ${failed ? "failed" : ""}`} data-step={s.step}>
      <div className="card-head">
        <h3>
          {s.step} <span className="muted small">attempt {s.attempt}</span>
        </h3>
        <div>
          <StatusBadge status={s.status} /> <PortBadge port={s.port} error={!!s.error} />
        </div>
      </div>
      <p className="muted small">
        {s.due_at && (
          <>
            due <Time iso={s.due_at} /> ·{" "}
          </>
        )}
        started <Time iso={s.started_at} />
        {s.duration_ms !== null && s.duration_ms !== undefined && <> · {s.duration_ms} ms</>}
      </p>
      {s.error && (
        <div className="alert alert-error">
          {typeof s.error === "string" ? s.error : (
            <>
              {s.error.code && <code className="code-chip">{s.error.code}</code>} {s.error.message || JSON.stringify(s.error)}
            </>
          )}
        </div>
      )}
      <div className="grid-2 tight">
        <div>
          <h4>Input</h4>
          <Json value={s.input} />
        </div>
        <div>
          <h4>Output</h4>
          <Json value={s.output} />
        </div>
      </div>
    </li>
  );
}

function RunDetail({ id }) {
  const run = useApi(`/runs/${encodeURIComponent(id)}`);
  const r = run.data;
  useInterval(run.reload, 3000, !!r && ACTIVE.has(r.status));
  return (
    <div className="page">
      <p>
        <a href="#/runs">← Runs</a>
      </p>
      <ErrorBox error={run.error} />
      {run.loading && !r && <Loading />}
      {r && (
        <>
          <header className="page-head">
            <div>
              <h1>
                {r.workflow || "action"} <StatusBadge status={r.status} /> {r.dead && <StatusBadge status="dead" />}
              </h1>
              <p className="muted">
                run <code>{r.id}</code> · booking <code>{r.booking_uid || "—"}</code>
                {r.event_id && (
                  <>
                    {" · "}
                    <a href={href(`/events/${r.event_id}`)}>event</a>
                  </>
                )}{" "}
                · created <Time iso={r.created_at} />
              </p>
            </div>
          </header>
          {r.error && <div className="alert alert-error">{typeof r.error === "string" ? r.error : JSON.stringify(r.error)}</div>}
          {r.cancel_reason && <div className="alert alert-warn">Cancelled: {r.cancel_reason}</div>}
          <section className="card upcoming" aria-label="Upcoming">
            <h2>Upcoming</h2>
            {(r.upcoming || []).length === 0 ? (
              <Empty>Nothing ahead{ACTIVE.has(r.status) ? "" : ": the run is over"}.</Empty>
            ) : (
              <table className="table">
                <thead>
                  <tr>
                    <th>Step</th>
                    <th>Action</th>
                    <th>When</th>
                    <th>Due</th>
                  </tr>
                </thead>
                <tbody>
                  {r.upcoming.map((u) => (
                    <tr key={u.step} data-upcoming={u.step}>
                      <td>{u.step}</td>
                      <td>
                        <code>{u.action}</code>
                      </td>
                      <td>{u.at}</td>
                      <td className="due">{u.due_at ? <Time iso={u.due_at} /> : <span className="muted">after the previous step</span>}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
          <h2>Trace</h2>
          {(r.steps || []).length === 0 && <Empty>No step has run yet.</Empty>}
          <ol className="trace">
            {(r.steps || []).map((s, i) => (
              <Step key={`${s.step}.${s.attempt}.${i}`} s={s} />
            ))}
          </ol>
        </>
      )}
    </div>
  );
}

export function Runs({ route }) {
  const id = route.parts[1];
  const filters = {
    status: route.params.status || "",
    workflow: route.params.workflow || "",
    booking_uid: route.params.booking_uid || "",
  };
  const [pages, setPages] = useState({ items: [], next: null, error: null, loading: false });
  const fkey = JSON.stringify(filters);
  const load = async (cursor) => {
    setPages((p) => ({ ...p, loading: true }));
    try {
      const data = await api("GET", `/runs${query({ ...filters, cursor, limit: 50 })}`);
      setPages((p) => ({
        items: cursor ? [...p.items, ...itemsOf(data)] : itemsOf(data),
        next: data && data.next_cursor,
        error: null,
        loading: false,
      }));
    } catch (error) {
      setPages((p) => ({ ...p, error, loading: false }));
    }
  };
  useEffect(() => {
    if (!id) load(null);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [fkey, id]);
  if (id) return <RunDetail id={id} />;
  const setFilter = (k, v) => navigate("/runs", { ...filters, [k]: v });
  return (
    <div className="page">
      <header className="page-head">
        <div>
          <h1>Runs</h1>
          <p className="muted">Each workflow run, and each action run from the console or the API.</p>
        </div>
        <button type="button" className="btn" onClick={() => load(null)}>
          Refresh
        </button>
      </header>
      <form className="filters card" onSubmit={(e) => e.preventDefault()}>
        <div className="form-group">
          <label className="control-label" htmlFor="r-status">
            Status
          </label>
          <select id="r-status" className="form-control" value={filters.status} onChange={(e) => setFilter("status", e.target.value)}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <div className="form-group">
          <label className="control-label" htmlFor="r-workflow">
            Workflow
          </label>
          <input
            id="r-workflow"
            className="form-control"
            defaultValue={filters.workflow}
            onBlur={(e) => e.target.value !== filters.workflow && setFilter("workflow", e.target.value.trim())}
            onKeyDown={(e) => e.key === "Enter" && setFilter("workflow", e.target.value.trim())}
          />
        </div>
        <div className="form-group">
          <label className="control-label" htmlFor="r-uid">
            Booking uid
          </label>
          <input
            id="r-uid"
            className="form-control"
            defaultValue={filters.booking_uid}
            onBlur={(e) => e.target.value !== filters.booking_uid && setFilter("booking_uid", e.target.value.trim())}
            onKeyDown={(e) => e.key === "Enter" && setFilter("booking_uid", e.target.value.trim())}
          />
        </div>
      </form>
      <ErrorBox error={pages.error} />
      {pages.loading && !pages.items.length && <Loading />}
      {!pages.loading && !pages.error && pages.items.length === 0 && <Empty>No runs match.</Empty>}
      {pages.items.length > 0 && (
        <table className="table">
          <thead>
            <tr>
              <th>Created</th>
              <th>Workflow</th>
              <th>Status</th>
              <th>Booking</th>
              <th>Current step</th>
              <th>Next due</th>
            </tr>
          </thead>
          <tbody>
            {pages.items.map((r) => (
              <tr key={r.id} data-run={r.id} data-workflow={r.workflow}>
                <td>
                  <a href={href(`/runs/${r.id}`)}>
                    <Time iso={r.created_at} />
                  </a>
                </td>
                <td>{r.workflow || <span className="muted">action</span>}</td>
                <td>
                  <StatusBadge status={r.status} /> {r.dead && <StatusBadge status="dead" />}
                </td>
                <td>
                  <code>{r.booking_uid}</code>
                </td>
                <td>{r.current_step || "—"}</td>
                <td>
                  <Time iso={r.next_due_at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {pages.next && (
        <button type="button" className="btn" onClick={() => load(pages.next)} disabled={pages.loading}>
          Load more
        </button>
      )}
    </div>
  );
}
