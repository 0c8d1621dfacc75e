import { useState } from "react";
import { api, setToken } from "../api.js";
import { ErrorBox } from "../ui.jsx";

export function SignIn() {
  const [value, setValue] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const token = value.trim();
    try {
      await api("GET", "/workspace", undefined, { token });
      setToken(token);
      if (!window.location.hash || window.location.hash === "#/") window.location.hash = "#/integrations";
    } catch (exc) {
      setError(
        exc.status === 401 || exc.status === 403
          ? { message: "This token is not valid (or was revoked). Create one with `calflow tokens create`." }
          : exc,
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="signin">
      <form className="card signin-card" onSubmit={submit}>
        <div className="brand big">
          <img src="./favicon.svg" alt="" width="34" height="34" />
          <span>calflow</span>
        </div>
        <p className="muted">Sign in with an API token of your workspace.</p>
        <label htmlFor="token" className="control-label">
          API token
        </label>
        <input
          id="token"
          className="form-control"
          type="password"
          autoComplete="off"
          value={value}
          onChange={(e) => setValue(e.target.value)}
          placeholder="cf_…"
          required
        />
        <ErrorBox error={error} title="Sign-in failed" />
        <button type="submit" className="btn btn-primary" disabled={busy || !value.trim()}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        <p className="hint muted">
          No token yet? <code>calflow tokens create --workspace NAME</code> prints one; it is kept
          in this tab only (sessionStorage).
        </p>
      </form>
    </div>
  );
}
