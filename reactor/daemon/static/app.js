// Reactor Swarm's page: fills the panels from the JSON API and follows /api/events (SSE).
// Plain JavaScript, no build, nothing from a CDN. Auth is the same-origin cookie.
"use strict";

const settings = JSON.parse(document.getElementById("settings").textContent);
const $ = (id) => document.getElementById(id);
let selectedRun = null;
let runStream = null;
const gpuHistory = [];

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
  return body;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (cls) td.className = cls;
  return td;
}

function row(cells, attrs = {}) {
  const tr = document.createElement("tr");
  for (const [key, value] of Object.entries(attrs)) tr.setAttribute(key, value);
  cells.forEach((c) => tr.appendChild(c));
  return tr;
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleTimeString() : "";
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

async function loadRuns() {
  const runs = await api("/api/runs?limit=25");
  const body = $("runs");
  body.replaceChildren(...runs.map((r) => row(
    [cell(r.run_id), cell(r.reactor), cell(r.status, "status-" + r.status), cell(when(r.created_at)), cell(r.events)],
    { "data-run": r.run_id, "data-status": r.status },
  )));
  body.querySelectorAll("tr[data-run]").forEach((tr) => tr.addEventListener("click", () => selectRun(tr.dataset.run)));
}

async function loadRun(runId) {
  const run = await api(`/api/runs/${encodeURIComponent(runId)}`);
  $("run-detail").hidden = false;
  $("run-detail").dataset.run = runId;
  $("run-detail").dataset.status = run.status;
  $("run-title").textContent = `${run.reactor} · ${run.run_id} · ${run.status}`;
  $("run-title").className = "status-" + run.status;
  const links = $("run-links");
  links.replaceChildren();
  if (run.trace_url) {
    const a = document.createElement("a");
    a.href = run.trace_url; a.textContent = "trace in Jaeger"; a.target = "_blank"; a.rel = "noopener";
    links.appendChild(a);
  }
  if (run.errors && run.errors.length) {
    const p = document.createElement("span");
    p.className = "status-failed";
    p.textContent = " errors: " + run.errors.map((e) => `${e.step || "run"}: ${e.message}`).join("; ");
    links.appendChild(p);
  }
  $("run-steps").replaceChildren(...run.steps.map((s) => row(
    [cell(s.name), cell(s.status, "status-" + s.status), cell(s.attempts),
     cell(s.duration === null ? "" : s.duration.toFixed(3) + " s"), cell(s.error ? s.error.message : "")],
    { "data-step": s.name, "data-status": s.status },
  )));
  drawGraph(run);
}

async function drawGraph(run) {
  const graph = $("run-graph");
  const status = Object.fromEntries(run.steps.map((s) => [s.name, s.status]));
  let mermaid = "";
  try {
    mermaid = (await api(`/api/reactors/${encodeURIComponent(run.reactor)}`)).mermaid;
  } catch (e) {
    mermaid = "flowchart TD\n" + run.steps.map((s) => `  ${s.name}`).join("\n");
  }
  $("run-mermaid").textContent = mermaid;
  const names = run.steps.map((s) => s.name);
  graph.replaceChildren(...names.flatMap((name, i) => {
    const node = document.createElement("span");
    node.className = "node status-" + (status[name] || "pending");
    node.textContent = name;
    node.dataset.step = name;
    if (i === names.length - 1) return [node];
    const arrow = document.createElement("span");
    arrow.textContent = "→";
    return [node, arrow];
  }));
}

function selectRun(runId) {
  selectedRun = runId;
  if (runStream) runStream.close();
  loadRun(runId).catch(console.error);
  // The run's own journal as SSE: each event moves a step; the stream ends with the run.
  runStream = new EventSource(`/api/runs/${encodeURIComponent(runId)}/events`);
  const refresh = debounce(() => loadRun(runId).catch(console.error), 50);
  for (const type of ["RunStarted", "RunResumed", "StepStarted", "StepCompleted", "StepFailed", "StepSkipped",
                      "RunCompleted", "RunFailed", "RunCancelled", "RunHalted"]) {
    runStream.addEventListener(type, refresh);
  }
  runStream.addEventListener("error", () => { runStream.close(); refresh(); });
}

async function loadSessions() {
  const sessions = await api("/api/sessions/overview?all=true&limit=50");
  $("sessions").replaceChildren(...sessions.map((s) => row(
    [cell(s.session_id), cell(s.task_description.length > 60 ? s.task_description.slice(0, 60) + "…" : s.task_description),
     cell(s.owner), cell(s.status, "status-" + (s.status === "executing" ? "running" : s.status === "decided" ? "done" : "pending")),
     cell(s.steps), cell(s.decisions), cell(when(s.updated_at))],
    { "data-session": s.session_id, "data-status": s.status, "data-steps": s.steps, "data-decisions": s.decisions },
  )));
}

async function loadConversations() {
  const conversations = await api("/api/conversations?limit=25");
  $("conversations").replaceChildren(...conversations.map((c) => row(
    [cell(c.id), cell(c.messages), cell(c.ended ? "yes" : "no"), cell(when(c.updated_at))],
    { "data-conversation": c.id, "data-messages": c.messages },
  )));
}

async function loadFleet() {
  const models = await api("/api/models");
  $("models").replaceChildren(...models.map((m) => row(
    [cell(m.model), cell(m.host), cell(m.loaded === null ? "?" : m.loaded ? "yes" : "no"),
     cell(m.breaker, m.breaker === "closed" ? "status-done" : "status-failed"), cell(m.context_length || "")],
  )));
  const hosts = await api("/api/hosts");
  $("hosts").replaceChildren(...hosts.map((h) => {
    const stats = h.stats || {};
    const latency = (stats.models || []).map((m) => m.latency_ewma_s).filter((x) => x);
    const avg = latency.length ? (1000 * latency.reduce((a, b) => a + b, 0) / latency.length).toFixed(0) + " ms" : "";
    return row([cell(h.name), cell(h.server), cell(h.reachable ? "yes" : "no", h.reachable ? "status-done" : "status-failed"),
                cell(stats.in_flight ?? ""), cell(avg)]);
  }));
}

function showResources(snapshot) {
  if (!snapshot.gpus || !snapshot.gpus.length) {
    $("resources").textContent = snapshot.nvml_error ? "no GPU reading: " + snapshot.nvml_error : "no GPUs";
  } else {
    $("resources").textContent = snapshot.gpus.map((g) =>
      `GPU ${g.index} ${g.name}: ${((g.used_bytes || 0) / 2 ** 30).toFixed(1)} / ${((g.total_bytes || 0) / 2 ** 30).toFixed(1)} GiB`).join(" · ");
    const used = snapshot.gpus.reduce((a, g) => a + (g.used_bytes || 0), 0);
    const total = snapshot.gpus.reduce((a, g) => a + (g.total_bytes || 0), 0) || 1;
    gpuHistory.push(used / total);
    if (gpuHistory.length > 120) gpuHistory.shift();
    const canvas = $("gpu-chart");
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.beginPath();
    gpuHistory.forEach((v, i) => ctx.lineTo(i * canvas.width / 120, canvas.height * (1 - v)));
    ctx.stroke();
  }
}

async function loadOthers() {
  showResources(await api("/api/resources").catch(() => ({ gpus: [] })));
  const spend = await api("/api/spend");
  $("spend").textContent = `$${spend.total_usd.toFixed(4)} total · ` +
    (spend.models.map((m) => `${m.model}: $${m.cost_usd.toFixed(4)} (${m.calls} calls)`).join(" · ") || "no priced calls");
}

// The supervision tree, one row per actor, indented under its supervisor.
function actorRows(node, depth, rows) {
  const kind = node.supervisor ? "supervisor" : node.on_loop ? "loop" : "thread";
  const name = cell(node.name + (node.more ? ` (+${node.more} more)` : ""));
  name.style.paddingLeft = `${0.3 + depth * 1.2}em`;
  rows.push(row(
    [name, cell(kind), cell(node.running ? "yes" : "no", node.running ? "status-done" : "status-failed"),
     cell(node.restarts), cell(node.mailbox, node.mailbox > 0 ? "status-running" : ""), cell(node.error || "")],
    { "data-actor": node.name, "data-parent": node.parent || "", "data-restarts": node.restarts,
      "data-mailbox": node.mailbox, "data-running": node.running },
  ));
  node.children.forEach((child) => actorRows(child, depth + 1, rows));
  return rows;
}

async function loadActors() {
  const tree = await api("/api/actors");
  $("actors").replaceChildren(...actorRows(tree, 0, []));
}

function logEvent(type, data) {
  const li = document.createElement("li");
  li.textContent = `${type} ${data.length > 160 ? data.slice(0, 160) + "…" : data}`;
  const list = $("events");
  list.prepend(li);
  while (list.children.length > 100) list.lastChild.remove();
}

function followBus() {
  const bus = new EventSource("/api/events");
  const runs = debounce(() => loadRuns().catch(console.error), 100);
  const fleet = debounce(() => loadFleet().catch(console.error), 200);
  bus.addEventListener("open", () => { $("conn").textContent = "live"; $("conn").className = "badge live"; });
  bus.addEventListener("error", () => { $("conn").textContent = "reconnecting"; $("conn").className = "badge"; });
  bus.addEventListener("RunActivity", (e) => {
    logEvent("RunActivity", e.data);
    runs();
    const activity = JSON.parse(e.data);
    if (activity.run_id === selectedRun) loadRun(selectedRun).catch(console.error);
  });
  for (const type of ["BreakerTransition", "ModelLoadChanged", "CatalogRefreshed"]) {
    bus.addEventListener(type, (e) => { logEvent(type, e.data); fleet(); });
  }
  const sessions = debounce(() => loadSessions().catch(console.error), 100);
  bus.addEventListener("SessionActivity", (e) => { logEvent("SessionActivity", e.data); sessions(); });
  const conversations = debounce(() => loadConversations().catch(console.error), 100);
  bus.addEventListener("ConversationActivity", (e) => { logEvent("ConversationActivity", e.data); conversations(); });
  bus.addEventListener("ResourceSnapshot", (e) => showResources(JSON.parse(e.data)));
  const actors = debounce(() => loadActors().catch(console.error), 250);
  for (const type of ["ActorCrashed", "ActorRestarted", "SupervisorGaveUp"]) {
    bus.addEventListener(type, (e) => { logEvent(type, e.data); actors(); });
  }
  for (const type of ["ActorStarted", "ActorStopped"]) bus.addEventListener(type, actors);
}

$("start-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  let inputs = {};
  try {
    inputs = $("start-inputs").value.trim() ? JSON.parse($("start-inputs").value) : {};
    const created = await api("/api/runs", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ reactor: $("start-reactor").value, inputs }),
    });
    $("start-result").textContent = "started " + created.run_id;
    selectRun(created.run_id);
    loadRuns();
  } catch (e) {
    $("start-result").textContent = String(e.message || e);
  }
});

loadRuns().catch(console.error);
loadFleet().catch(console.error);
loadSessions().catch(console.error);
loadConversations().catch(console.error);
loadOthers().catch(console.error);
loadActors().catch(console.error);
followBus();
// Mailbox depth moves without events: the tree is read again every two seconds.
setInterval(() => { if (!document.hidden) loadActors().catch(console.error); }, 2000);
setInterval(() => { loadFleet().catch(console.error); loadOthers().catch(console.error); }, 10000);
