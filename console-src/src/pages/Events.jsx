// Events: the normalized booking changes, filterable, with their deliveries and runs.
import { itemsOf, query } from "../api.js";
import { href, navigate } from "../router.js";
import { Empty, ErrorBox, Filter, Json, LoadMore, Loading, StatusBadge, Time, useApi, usePaged } from "../ui.jsx";

const PROVIDERS = ["cal_com", "savvycal"];
const KINDS = ["created", "rescheduled", "cancelled", "requested", "approved", "declined", "no_show", "meeting_ended"];

function attendeeNames(e) {
  const ev = e.event || {};
  return (ev.attendees || []).map((a) => a.name || a.email).filter(Boolean).join(", ");
}

function eventTypeOf(body) {
  const t = body.event_type;
  if (!t) return "—";
  return [t.title, t.slug && <code key="slug">{t.slug}</code>, t.id && <span key="id" className="muted">#{t.id}</span>]
    .filter(Boolean)
    .map((x, i) => <span key={i}>{x} </span>);
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
                  <dd>{eventTypeOf(body)}</dd>
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
                {(e.deliveries || []).map((d, i) => (
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
  const list = usePaged("/events", filters, !id);
  if (id) return <EventDetail id={id} />;
  const setFilter = (k) => (v) => navigate("/events", { ...filters, [k]: v });
  return (
    <div className="page">
      <header className="page-head">
        <div>
          <h1>Events</h1>
          <p className="muted">Every booking change, once, whatever channel it came through.</p>
        </div>
        <button type="button" className="btn" onClick={list.refresh}>
          Refresh
        </button>
      </header>
      <form className="filters card" onSubmit={(e) => e.preventDefault()}>
        <Filter id="f-kind" label="Kind" value={filters.kind} options={KINDS} onChange={setFilter("kind")} />
        <Filter id="f-provider" label="Provider" value={filters.provider} options={PROVIDERS} onChange={setFilter("provider")} />
        <Filter id="f-uid" label="Booking uid" value={filters.booking_uid} onChange={setFilter("booking_uid")} />
      </form>
      <ErrorBox error={list.error} />
      {list.loading && !list.items.length && <Loading />}
      {!list.loading && !list.error && list.items.length === 0 && <Empty>No events match.</Empty>}
      {list.items.length > 0 && (
        <table className="table">
          <thead>
            <tr>
              <th>Received</th>
              <th>Kind</th>
              <th>Booking</th>
              <th>Start</th>
              <th>Attendees</th>
              <th>Source</th>
              <th>Duplicates</th>
            </tr>
          </thead>
          <tbody>
            {list.items.map((e) => (
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
                <td>{e.duplicates}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <LoadMore list={list} />
    </div>
  );
}
