// The console shell: sign-in gate, navigation, pages.
import { useEffect, useState } from "react";
import { api, getToken, onTokenChange, setToken } from "./api.js";
import { Events } from "./pages/Events.jsx";
import { Integrations } from "./pages/Integrations.jsx";
import { Replay } from "./pages/Replay.jsx";
import { Runner } from "./pages/Runner.jsx";
import { Runs } from "./pages/Runs.jsx";
import { SignIn } from "./pages/SignIn.jsx";
import { Workflows } from "./pages/Workflows.jsx";
import { useRoute } from "./router.js";

const NAV = [
  ["integrations", "Integrations"],
  ["runner", "Action runner"],
  ["workflows", "Workflows"],
  ["events", "Events"],
  ["runs", "Runs"],
  ["replay", "Replay"],
];

const PAGES = {
  integrations: Integrations,
  runner: Runner,
  workflows: Workflows,
  events: Events,
  runs: Runs,
  replay: Replay,
};

/** `#token=…` in the address (as `calflow demo` prints it) signs in, then leaves the URL. */
function takeTokenFromHash() {
  const m = window.location.hash.match(/[#&?]token=([^&]+)/);
  if (!m) return;
  setToken(decodeURIComponent(m[1]));
  window.history.replaceState(null, "", `${window.location.pathname}#/integrations`);
}

takeTokenFromHash();

export function App() {
  const [token, setTok] = useState(getToken());
  const [workspace, setWorkspace] = useState(null);
  const route = useRoute();
  useEffect(() => onTokenChange(setTok), []);
  useEffect(() => {
    if (!token) {
      setWorkspace(null);
      return;
    }
    api("GET", "/workspace")
      .then(setWorkspace)
      .catch(() => setWorkspace(null));
  }, [token]);

  if (!token) return <SignIn />;
  const section = route.parts[0] || "integrations";
  const Page = PAGES[section] || Integrations;
  return (
    <div className="shell">
      <aside className="sidebar">
        <div className="brand">
          <img src="./favicon.svg" alt="" width="26" height="26" />
          <span>calflow</span>
        </div>
        <nav>
          {NAV.map(([key, label]) => (
            <a key={key} href={`#/${key}`} className={section === key ? "active" : ""}>
              {label}
            </a>
          ))}
        </nav>
        <div className="sidebar-foot">
          <div className="workspace" title={workspace ? workspace.id : ""}>
            <span className="muted">Workspace</span>
            <strong data-testid="workspace-name">{workspace ? workspace.name || workspace.id : "…"}</strong>
          </div>
          <button type="button" className="btn btn-small" onClick={() => setToken(null)}>
            Sign out
          </button>
        </div>
      </aside>
      <main className="content">
        <Page route={route} key={section} />
      </main>
    </div>
  );
}
