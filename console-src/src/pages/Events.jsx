// Events: the normalized booking changes, filterable, with their deliveries and runs.
import { useEffect, useState } from "react";
import { api, itemsOf, query } from "../api.js";
import { href, navigate } from "../router.js";
import { Empty, ErrorBox, Json, Loading, StatusBadge, Time, useApi } from "../ui.jsx";

const KINDS = ["created", "rescheduled", "cancelled", "requested", "approved", "declined", "no_show", "meeting_ended"];

function attendeeNames(e) {
  const ev = e.event || {};
  return (ev.attendees || []).map((a) => a.name || a.email).filter(Boolean).join(", ");
}

function EventDetail({ id }) {
  const ev = useApi(`/events/${encodeURIComponent(id)}`);
  const e = ev.data;
  const runs = useApi(e && e.booking_uid ? `/runs${query({ booking_uid: e.booking_uid })}` : null);
  const body = (e && e.event) || {};
  return (
    <div className="page">
      <p>
        <a href="#/events">← Events</a>
      </p>
      <ErrorBox error={ev.error} />
      {ev.loading && !e && <Loading />}
      {e && (
        <>
          <header className="page-head">
            <div>
              <h1>
                <StatusBadge status={e.kind} /> {body.title || e.booking_uid}
              </h1>
              <p className="muted">
                {e.provider} · booking <code>{e.booking_uid}</code> · source {e.source} · received{" "}
                <Time iso={e.received_at} />
              </p>
            </div>
          </header>
          <div className="grid-2">
            <section className="card">
              <h2>Booking</h2>
              <dl className="kv">
                <div>
                  <dt>start</dt>
                  <dd>
                    <Time iso={body.start} />
                  </dd>
                </div>
                <div>
                  <dt>end</dt>
                  <dd>
                    <Time iso={body.end} />
                  </dd>
                </div>
                <div>
                  <dt>event type</dt>
                  <dd>{body.event_type ? JSON.stringify(body.event_type) : "—"}</dd>
                </div>
                <div>
                  <dt>attendees</dt>
                  <dd>
                    {(body.attendees || []).map((a, i) => (
                      <div key={i}>
                        {a.name} <span className="muted">{a.email}</span> {a.phone && <code>{a.phone}</code>}
                      </div>
                    ))}
                  </dd>
                </div>
                {body.reason && (
                  <div>
                    <dt>reason</dt>
                    <dd>{body.reason}</dd>
                  </div>
                )}
              </dl>
              <h2>Deliveries</h2>
              <ul className="plain">
                {(e.deliveries_list || (Array.isArray(e.deliveries) ? e.deliveries : [])).map((d, i) => (
                  <li key={i}>
                    {d.source} {d.duplicate && <span className="badge tone-muted">duplicate</span>}{" "}
                    <Time iso={d.received_at} />
                  </li>
                ))}
              </ul>
            </section>
            <section className="card">
              <h2>Runs for this booking</h2>
              <ErrorBox error={runs.error} />
              {itemsOf(runs.data).length === 0 && runs.data && <Empty>No workflow runs for this booking.</Empty>}
              <ul className="plain">
                {itemsOf(runs.data).map((r) => (
                  <li key={r.id}>
                    <a href={href(`/runs/${r.id}`)}>{r.workflow}</a> <StatusBadge status={r.status} />{" "}
                    {r.next_due_at && (
                      <span className="muted">
                        next <Time iso={r.next_due_at} />
                      </span>
                    )}
                  </li>
                ))}
              </ul>
              <h2>Normalized event</h2>
              <Json value={e.event} />
            </section>
          </div>
        </>
      )}
    </div>
  );
}

export function Events({ route }) {
  const id = route.parts[1];
  const filters = {
    kind: route.params.kind || "",
    provider: route.params.provider || "",
    booking_uid: route.params.booking_uid || "",
  };
  const [pages, setPages] = useState({ items: [], next: null, error: null, loading: false });
  const fkey = JSON.stringify(filters);
  const load = async (cursor) => {
    setPages((p) => ({ ...p, loading: true }));
    try {
      const data = await api("GET", `/events${query({ ...filters, cursor, limit: 50 })}`);
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
  if (id) return <EventDetail id={id} />;
  const setFilter = (k, v) => navigate("/events", { ...filters, [k]: v });
  return (
    <div className="page">
      <header className="page-head">
        <div>
          <h1>Events</h1>
          <p className="muted">Every booking change, once, whatever channel it came through.</p>
        </div>
        <button type="button" className="btn" onClick={() => load(null)}>
          Refresh
        </button>
      </header>
      <form className="filters card" onSubmit={(e) => e.preventDefault()}>
        <div className="form-group">
          <label className="control-label" htmlFor="f-kind">
            Kind
          </label>
          <select id="f-kind" className="form-control" value={filters.kind} onChange={(e) => setFilter("kind", e.target.value)}>
            <option value="">any</option>
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </div>
        <div className="form-group">
          <label className="control-label" htmlFor="f-provider">
            Provider
          </label>
          <select
            id="f-provider"
            className="form-control"
            value={filters.provider}
            onChange={(e) => setFilter("provider", e.target.value)}
          >
            <option value="">any</option>
            <option value="cal_com">cal_com</option>
            <option value="savvycal">savvycal</option>
          </select>
        </div>
        <div className="form-group">
          <label className="control-label" htmlFor="f-uid">
            Booking uid
          </label>
          <input
            id="f-uid"
            className="form-control"
            defaultValue={filters.booking_uid}
            onBlur={(e) => e.target.value !== filters.booking_uid && setFilter("booking_uid", e.target.value.trim())}
            onKeyDown={(e) => e.key === "Enter" && setFilter("booking_uid", e.target.value.trim())}
          />
        </div>
      </form>
      <ErrorBox error={pages.error} />
      {pages.loading && !pages.items.length && <Loading />}
      {!pages.loading && !pages.error && pages.items.length === 0 && <Empty>No events match.</Empty>}
      {pages.items.length > 0 && (
        <table className="table">
          <thead>
            <tr>
              <th>Received</th>
              <th>Kind</th>
              <th>Booking</th>
              <th>Start</th>
              <th>Attendees</th>
              <th>Source</th>
              <th>Deliveries</th>
            </tr>
          </thead>
          <tbody>
            {pages.items.map((e) => (
              <tr key={e.id} data-event={e.id} data-booking={e.booking_uid}>
                <td>
                  <a href={href(`/events/${e.id}`)}>
                    <Time iso={e.received_at} />
                  </a>
                </td>
                <td>
                  <StatusBadge status={e.kind} />
                </td>
                <td>
                  <code>{e.booking_uid}</code>
                </td>
                <td>
                  <Time iso={(e.event || {}).start} />
                </td>
                <td>{attendeeNames(e)}</td>
                <td>{e.source}</td>
                <td>{e.deliveries}</td>
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
