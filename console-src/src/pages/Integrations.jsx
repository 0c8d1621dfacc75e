// Integrations: list, add (a form drawn from the app's credential fields), test, remove.
import { useMemo, useState } from "react";
import { api, itemsOf } from "../api.js";
import { SchemaForm } from "../form/SchemaForm.jsx";
import { errorSchemaFrom } from "../form/schema.js";
import { href } from "../router.js";
import { Empty, ErrorBox, Loading, PortBadge, useApi } from "../ui.jsx";

/** The add-integration form's schema: a name plus the app's credential fields. */
export function credentialSchema(app) {
  const fields = app.credential_fields || [];
  const properties = {};
  const ui = {};
  fields.forEach((f) => {
    properties[f.key] = { type: "string", title: f.label || f.key };
    if (f.description) properties[f.key].description = f.description;
    if (f.default !== null && f.default !== undefined) properties[f.key].default = f.default;
    const node = {};
    if (f.secret) node["ui:widget"] = "password";
    if (f.placeholder) node["ui:placeholder"] = f.placeholder;
    if (Object.keys(node).length) ui[f.key] = node;
  });
  return {
    schema: {
      type: "object",
      required: ["name", "credentials"],
      properties: {
        name: {
          type: "string",
          title: "Name",
          minLength: 1,
          description: "How workflows and the CLI refer to this integration.",
        },
        credentials: {
          type: "object",
          title: `${app.name} credentials`,
          required: fields.filter((f) => f.required).map((f) => f.key),
          properties,
        },
      },
    },
    uiSchema: { credentials: ui },
  };
}

function authHint(app) {
  const modes = app.auth_modes || [];
  if (!modes.length) return null;
  return (
    <p className="hint muted">
      Sign in with one of:{" "}
      {modes.map((m, i) => (
        <span key={m.key}>
          {i > 0 && " or "}
          <strong>{m.label}</strong> ({m.fields.join(", ")})
        </span>
      ))}
      .
    </p>
  );
}

function AddIntegration({ apps, onAdded, onCancel }) {
  const [appKey, setAppKey] = useState(apps[0] ? apps[0].key : "");
  const appDetail = useApi(appKey ? `/apps/${appKey}` : null);
  const app = appDetail.data;
  const form = useMemo(() => (app ? credentialSchema(app) : null), [app]);
  const [formData, setFormData] = useState({});
  const [error, setError] = useState(null);
  const [extraErrors, setExtraErrors] = useState(undefined);
  const [busy, setBusy] = useState(false);

  const submit = async (data) => {
    setBusy(true);
    setError(null);
    setExtraErrors(undefined);
    const secretKeys = new Set((app.credential_fields || []).filter((f) => f.secret).map((f) => f.key));
    const config = {};
    const secrets = {};
    Object.entries(data.credentials || {}).forEach(([k, v]) => {
      if (v === undefined || v === "") return;
      (secretKeys.has(k) ? secrets : config)[k] = v;
    });
    try {
      const created = await api("POST", "/integrations", { app: appKey, name: data.name, config, secrets });
      setFormData({});
      onAdded(created);
    } catch (exc) {
      const details = (exc.details || []).map((d) =>
        d.field && d.field !== "name" && !d.field.startsWith("config") && !d.field.startsWith("secrets")
          ? { ...d, field: `credentials.${d.field}` }
          : { ...d, field: String(d.field || "").replace(/^(config|secrets)\./, "credentials.") },
      );
      const { errors, general } = errorSchemaFrom(details, form.schema);
      setExtraErrors(errors);
      setError({ ...exc, message: exc.message, details: general });
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card drawer" aria-label="Add an integration">
      <div className="card-head">
        <h2>Add an integration</h2>
        <button type="button" className="btn btn-small" onClick={onCancel}>
          Close
        </button>
      </div>
      <div className="form-group">
        <label className="control-label" htmlFor="new-app">
          App
        </label>
        <select
          id="new-app"
          className="form-control"
          value={appKey}
          onChange={(e) => {
            setAppKey(e.target.value);
            setFormData({});
            setExtraErrors(undefined);
            setError(null);
          }}
        >
          {apps.map((a) => (
            <option key={a.key} value={a.key}>
              {a.name} ({a.key})
            </option>
          ))}
        </select>
      </div>
      {appDetail.loading && <Loading />}
      <ErrorBox error={appDetail.error} />
      {app && form && (
        <>
          {app.description && <p className="muted">{app.description}</p>}
          {authHint(app)}
          <SchemaForm
            key={appKey}
            idPrefix="integration"
            schema={form.schema}
            uiSchema={form.uiSchema}
            formData={formData}
            onChange={(d) => {
              setFormData(d);
              setExtraErrors(undefined);
            }}
            onSubmit={submit}
            extraErrors={extraErrors}
            submitLabel="Add integration"
            busy={busy}
          />
          <ErrorBox error={error} title="Not added" />
        </>
      )}
    </section>
  );
}

function webhookUrl(integration) {
  if (integration.webhook_url) return integration.webhook_url;
  const base = `${window.location.origin}${window.location.pathname}`.replace(/\/$/, "");
  return `${base}/hooks/${integration.id}`;
}

function IntegrationRow({ integration, onChanged }) {
  const [test, setTest] = useState(null);
  const [busy, setBusy] = useState(false);
  const runTest = async () => {
    setBusy(true);
    setTest(null);
    try {
      setTest({ result: await api("POST", `/integrations/${integration.id}/test`, {}) });
    } catch (exc) {
      setTest({ error: exc });
    } finally {
      setBusy(false);
    }
  };
  const remove = async () => {
    if (!window.confirm(`Remove the integration ${integration.name}? Workflows using it will fail.`)) return;
    try {
      await api("DELETE", `/integrations/${integration.id}`);
      onChanged();
    } catch (exc) {
      setTest({ error: exc });
    }
  };
  const r = test && test.result;
  const ok = r && (r.ok ?? r.success ?? false);
  const config = integration.config || {};
  const secrets = Object.keys(integration.secrets || {});
  return (
    <li className="card integration" data-integration={integration.name}>
      <div className="card-head">
        <div>
          <h3>
            {integration.name} <span className="badge tone-muted">{integration.app}</span>
          </h3>
          <code className="muted small">{integration.id}</code>
        </div>
        <div className="actions">
          <a className="btn btn-small" href={href("/runner", { integration: integration.id })}>
            Run an action
          </a>
          <button type="button" className="btn btn-small" onClick={runTest} disabled={busy}>
            {busy ? "Testing…" : "Test connection"}
          </button>
          <button type="button" className="btn btn-small btn-danger" onClick={remove}>
            Remove
          </button>
        </div>
      </div>
      <dl className="kv">
        {Object.entries(config).map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>
              <code>{String(v)}</code>
            </dd>
          </div>
        ))}
        {secrets.length > 0 && (
          <div>
            <dt>secrets</dt>
            <dd>{secrets.map((s) => <code key={s} className="secret">{s} ••••</code>)}</dd>
          </div>
        )}
        <div>
          <dt>webhook URL</dt>
          <dd>
            <code className="webhook-url">{webhookUrl(integration)}</code>
          </dd>
        </div>
      </dl>
      {r && (
        <div className={`alert ${ok ? "alert-ok" : "alert-error"} test-result`} role="status">
          <strong>{ok ? "Connection works" : "Connection failed"}</strong>{" "}
          {r.port && <PortBadge port={r.port} success={r.success} />} {r.message || (r.error && r.error.message) || ""}
          {r.duration_ms !== undefined && <span className="muted"> · {Math.round(r.duration_ms)} ms</span>}
        </div>
      )}
      {test && test.error && <ErrorBox error={test.error} title="Connection failed" />}
    </li>
  );
}

export function Integrations() {
  const list = useApi("/integrations");
  const apps = useApi("/apps");
  const [adding, setAdding] = useState(false);
  const [added, setAdded] = useState(null);
  const items = itemsOf(list.data);
  const appItems = itemsOf(apps.data);
  return (
    <div className="page">
      <header className="page-head">
        <div>
          <h1>Integrations</h1>
          <p className="muted">Credentials are encrypted at rest; secrets are never shown again.</p>
        </div>
        <button type="button" className="btn btn-primary" onClick={() => setAdding(true)} disabled={!appItems.length}>
          Add integration
        </button>
      </header>
      {adding && (
        <AddIntegration
          apps={appItems}
          onCancel={() => setAdding(false)}
          onAdded={(created) => {
            setAdding(false);
            setAdded(created);
            list.reload();
          }}
        />
      )}
      {added && (
        <div className="alert alert-ok" role="status">
          Added <strong>{added.name}</strong>.
        </div>
      )}
      <ErrorBox error={list.error || apps.error} />
      {list.loading && !list.data && <Loading />}
      {list.data && items.length === 0 && <Empty>No integrations yet: add one to run actions.</Empty>}
      <ul className="cards">
        {items.map((i) => (
          <IntegrationRow key={i.id} integration={i} onChanged={list.reload} />
        ))}
      </ul>
    </div>
  );
}
