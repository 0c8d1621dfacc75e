// The action runner: integration + action, a form drawn from the action's input schema,
// and the result by port.
import { useEffect, useMemo, useState } from "react";
import { api, itemsOf } from "../api.js";
import { SchemaForm } from "../form/SchemaForm.jsx";
import { errorSchemaFrom, mergeVariant, variantTitles } from "../form/schema.js";
import { href, navigate } from "../router.js";
import { Empty, ErrorBox, Json, Loading, PortBadge, useApi } from "../ui.jsx";

const variantKey = (app, action) => `calflow.variant.${app}.${action}`;

function storedVariant(app, action, count) {
  const n = Number(sessionStorage.getItem(variantKey(app, action)) || 0);
  return Number.isInteger(n) && n >= 0 && n < count ? n : 0;
}

function ResultPanel({ result, action }) {
  if (!result) return null;
  const err = result.error;
  const errObj = err && typeof err === "object" ? err : err ? { message: String(err) } : null;
  const code = (errObj && errObj.code) || result.code;
  const message = (errObj && errObj.message) || result.message;
  const declared = action && (action.ports || []).find((p) => p.key === result.port);
  return (
    <section className="card result" aria-label="Result" data-port={result.port}>
      <div className="card-head">
        <h2>
          Result <PortBadge port={result.port} success={result.success} error={declared && declared.error} />
        </h2>
        <div className="muted small">
          {result.duration_ms !== undefined && <span>{Math.round(result.duration_ms)} ms</span>}
          {result.run_id && (
            <>
              {" · "}
              <a href={href(`/runs/${result.run_id}`)}>run {result.run_id}</a>
            </>
          )}
        </div>
      </div>
      {declared && declared.description && <p className="muted">{declared.description}</p>}
      {(code || message) && (
        <div className={`alert ${result.success ? "alert-warn" : "alert-error"}`}>
          {code && <code className="code-chip">{code}</code>} {message}
        </div>
      )}
      <h3>Data</h3>
      <Json value={result.data === undefined ? null : result.data} className="result-data" />
    </section>
  );
}

export function Runner({ route }) {
  const integrations = useApi("/integrations");
  const items = itemsOf(integrations.data);
  const integrationId = route.params.integration || (items[0] && items[0].id) || "";
  const integration = items.find((i) => i.id === integrationId || i.name === integrationId);
  const appKey = integration ? integration.app : null;
  const app = useApi(appKey ? `/apps/${appKey}` : null);
  const actions = (app.data && app.data.actions) || [];
  const actionKey = route.params.action || (actions[0] && actions[0].key) || "";
  const detail = useApi(appKey && actionKey && actions.length ? `/apps/${appKey}/actions/${actionKey}` : null);
  const action = detail.data;
  const inputSchema = action && (action.input_schema || action.schema);
  const titles = useMemo(() => (inputSchema ? variantTitles(inputSchema) : []), [inputSchema]);
  const [variant, setVariant] = useState(0);
  const [formData, setFormData] = useState({});
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const [extraErrors, setExtraErrors] = useState(undefined);
  const [busy, setBusy] = useState(false);
  const [sent, setSent] = useState(null);

  useEffect(() => {
    setFormData({});
    setResult(null);
    setError(null);
    setExtraErrors(undefined);
    setSent(null);
    if (appKey && actionKey) setVariant(storedVariant(appKey, actionKey, titles.length));
  }, [appKey, actionKey, titles.length]);

  const schema = useMemo(
    () => (inputSchema ? mergeVariant(inputSchema, variant) : null),
    [inputSchema, variant],
  );
  const fetchContext = useMemo(
    () => ({ app: appKey, integration: integration ? integration.id : null }),
    [appKey, integration],
  );

  const chooseVariant = (i) => {
    setVariant(i);
    sessionStorage.setItem(variantKey(appKey, actionKey), String(i));
    setExtraErrors(undefined);
    setError(null);
  };

  const submit = async (input) => {
    setBusy(true);
    setResult(null);
    setError(null);
    setExtraErrors(undefined);
    setSent(input);
    try {
      setResult(
        await api("POST", `/actions/${appKey}/${action.key}/run`, { integration: integration.id, input }),
      );
    } catch (exc) {
      const { errors, general } = errorSchemaFrom(exc.details, schema);
      setExtraErrors(errors);
      setError({ ...exc, code: exc.code, message: exc.message, details: general });
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="page">
      <header className="page-head">
        <div>
          <h1>Action runner</h1>
          <p className="muted">Run any action of an integration with a form drawn from its input schema.</p>
        </div>
      </header>
      <ErrorBox error={integrations.error} />
      {integrations.data && items.length === 0 && (
        <Empty>
          No integrations yet. <a href="#/integrations">Add one</a> first.
        </Empty>
      )}
      {items.length > 0 && (
        <div className="toolbar card">
          <div className="form-group">
            <label className="control-label" htmlFor="runner-integration">
              Integration
            </label>
            <select
              id="runner-integration"
              className="form-control"
              value={integration ? integration.id : ""}
              onChange={(e) => navigate("/runner", { integration: e.target.value })}
            >
              {items.map((i) => (
                <option key={i.id} value={i.id}>
                  {i.name} ({i.app})
                </option>
              ))}
            </select>
          </div>
          <div className="form-group">
            <label className="control-label" htmlFor="runner-action">
              Action
            </label>
            <select
              id="runner-action"
              className="form-control"
              value={actionKey}
              disabled={!actions.length}
              onChange={(e) => navigate("/runner", { integration: integration.id, action: e.target.value })}
            >
              {actions.map((a) => (
                <option key={a.key} value={a.key}>
                  {a.name || a.key}
                </option>
              ))}
            </select>
          </div>
          {titles.length > 0 && (
            <div className="form-group">
              <label className="control-label" htmlFor="runner-variant">
                Variant
              </label>
              <select
                id="runner-variant"
                className="form-control"
                value={variant}
                onChange={(e) => chooseVariant(Number(e.target.value))}
              >
                {titles.map((t, i) => (
                  <option key={t} value={i}>
                    {t}
                  </option>
                ))}
              </select>
            </div>
          )}
        </div>
      )}
      <ErrorBox error={app.error || detail.error} />
      {(app.loading || detail.loading) && !action && <Loading />}
      {action && schema && (
        <div className="runner-grid">
          <section className="card" aria-label="Input">
            <div className="card-head">
              <h2>{action.name || action.key}</h2>
              <div>
                {(action.ports || []).map((p) => (
                  <PortBadge key={p.key} port={p.key} error={p.error} />
                ))}
              </div>
            </div>
            {action.description && <p className="muted">{action.description}</p>}
            <SchemaForm
              key={`${appKey}.${action.key}.${variant}`}
              idPrefix="input"
              schema={schema}
              formData={formData}
              onChange={(d) => {
                setFormData(d);
                if (extraErrors) setExtraErrors(undefined);
              }}
              onSubmit={submit}
              extraErrors={extraErrors}
              fetchContext={fetchContext}
              submitLabel={`Run ${action.name || action.key}`}
              busy={busy}
            />
            <ErrorBox error={error} title="Not run" />
          </section>
          <div>
            <ResultPanel result={result} action={action} />
            {sent && (
              <details className="card sent">
                <summary>Input sent</summary>
                <Json value={sent} />
              </details>
            )}
          </div>
        </div>
      )}
    </div>
  );
}
