// The page `/` answers when the dashboard is not built (http/dashboard.ts): for a person who opened
// Herald's address in a browser, linking the API reference and saying how to get the dashboard.
// Public and static apart from the version: it reveals nothing a request to /openapi.json does not.

/** Nothing runs on the page and nothing loads from elsewhere; only its own inline style applies. */
export const HOME_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function homePage(version: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Herald</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; color: #222; }
code { background: #f2f2f2; padding: 0 .25rem; border-radius: 3px; }
pre { background: #f2f2f2; padding: .75rem; overflow-x: auto; }
</style>
</head>
<body>
<h1>Herald</h1>
<p>Herald ${escapeHtml(version)} is running: a self-hosted notification hub with an HTTP API.</p>
<ul>
<li><a href="/docs">API reference</a> (interactive)</li>
<li><a href="/openapi.json">OpenAPI document</a> (<code>/openapi.json</code>)</li>
<li><a href="/healthz/ready">Readiness</a> (<code>/healthz/ready</code>)</li>
</ul>
<p>Every <code>/v1</code> request needs an API key: <code>Authorization: Bearer hk_…</code>. On the machine Herald runs on,
create one with</p>
<pre>npx herald keys create --scope admin --name me</pre>
<p>or use the admin key Herald printed on its first start.</p>
<p>The dashboard is not built on this server: <code>npm start</code> builds it (or <code>node scripts/build-dashboard.js</code>, then restart).</p>
</body>
</html>
`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
