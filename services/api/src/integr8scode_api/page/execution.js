// The execution page: log in with the API's tokens, show the execution and its timeline as a
// waterfall. Every value from the API is written with textContent (never as HTML).
"use strict";

(function () {
  const TOKEN_KEY = "integr8scode.token";
  const TERMINAL = new Set(["completed", "failed", "timed_out", "cancelled"]);
  const POLL_MS = 1000;
  const TIMELINE_TRIES = 30; // the trace reaches Jaeger a few seconds after the execution ends
  const executionId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function setState(state) {
    document.body.dataset.state = state;
  }

  function say(text) {
    $("message").textContent = text || "";
  }

  function ms(value) {
    if (value === null || value === undefined) return "–";
    return value >= 1000 ? (value / 1000).toFixed(2) + " s" : value.toFixed(1) + " ms";
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function showLogin(problem) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("content").hidden = true;
    $("logout").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = problem || "";
    setState("login");
  }

  async function api(path) {
    const response = await fetch(path, { headers: { Authorization: "Bearer " + token() } });
    if (response.status === 401) {
      showLogin("Your session ended; log in again.");
      throw new Error("unauthorized");
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = typeof body.detail === "string" ? body.detail : response.statusText;
      throw new Error(response.status + ": " + detail);
    }
    return body;
  }

  async function login(event) {
    event.preventDefault();
    $("login-error").textContent = "";
    const response = await fetch("/api/v1/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: $("username").value, password: $("password").value }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok || !body.access_token) {
      const detail = typeof body.detail === "string" ? body.detail : "login failed";
      $("login-error").textContent = detail;
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, body.access_token);
    $("login").hidden = true;
    start();
  }

  function renderExecution(ex) {
    $("status").textContent = ex.status;
    $("language").textContent = ex.language + " " + ex.language_version;
    $("exit-code").textContent = ex.exit_code === null ? "–" : String(ex.exit_code);
    $("created-at").textContent = ex.created_at || "–";
    $("finished-at").textContent = ex.finished_at || "–";
    $("trace-id").textContent = ex.trace_id || "none";
    $("stdout").textContent = ex.stdout || "";
    $("stderr").textContent = ex.stderr || "";
    $("error").textContent = ex.error || "";
    const usage = ex.resource_usage || {};
    $("cpu-time").textContent = ms(usage.cpu_time_ms);
    $("wall-time").textContent = ms(usage.wall_time_ms);
    $("peak-memory").textContent = usage.peak_memory_kb == null ? "–" : usage.peak_memory_kb + " KiB";
  }

  function safeLink(url) {
    try {
      const parsed = new URL(url, location.href);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (e) {
      return null;
    }
  }

  function renderPhases(timeline) {
    const body = $("phases").querySelector("tbody");
    body.replaceChildren();
    for (const phase of timeline.phases) {
      const row = el("tr");
      row.dataset.phase = phase.name;
      row.append(el("td", "", phase.name.replace(/_/g, " ")));
      row.append(el("td", "num", ms(phase.start_ms)));
      row.append(el("td", "num", ms(phase.duration_ms)));
      body.append(row);
    }
    const notes = $("notifications");
    notes.replaceChildren();
    for (const n of timeline.notifications) {
      const retries = n.retries
        .map((r) => "retry " + (r.retry ?? "?") + " after " + ms(r.backoff_ms) + " backoff")
        .join(", ");
      const text =
        "Notification (" + n.channel + "): " + (n.status || "?") + ", " + (n.attempts ?? "?") +
        " attempts in " + n.deliveries.length + " run(s), " + ms(n.duration_ms) +
        (retries ? "; " + retries : "");
      notes.append(el("p", "notification", text));
    }
  }

  function bar(start, duration, total, classes) {
    const node = el("div", "bar " + classes);
    node.style.left = (100 * Math.max(0, start)) / total + "%";
    node.style.width = Math.max(0.15, (100 * duration) / total) + "%";
    return node;
  }

  function renderWaterfall(timeline) {
    const fall = $("waterfall");
    fall.replaceChildren();
    const extent = $("scale").value === "result" && timeline.result_ms ? timeline.result_ms : timeline.total_ms;
    const total = Math.max(extent || 0, 1);
    const groups = new Map();
    for (const s of timeline.spans) {
      if (!groups.has(s.service)) groups.set(s.service, []);
      groups.get(s.service).push(s);
    }
    for (const [service, spans] of groups) {
      const group = el("div", "group");
      group.dataset.service = service;
      group.append(el("div", "service", service + " (" + spans.length + ")"));
      for (const span of spans) {
        const row = el("div", "row");
        const label = el("div", "label", span.name);
        const track = el("div", "track");
        const classes = (span.critical ? "critical " : "") + (span.status === "error" ? "error" : "");
        const node = bar(span.start_ms, span.duration_ms, total, classes);
        node.dataset.spanId = span.span_id;
        node.dataset.name = span.name;
        const attrs = Object.entries(span.attributes).map(([k, v]) => k + "=" + v).join("\n");
        node.title = span.name + ": " + ms(span.duration_ms) + " at " + ms(span.start_ms) +
          (attrs ? "\n" + attrs : "");
        track.append(node);
        row.append(label, track);
        group.append(row);
      }
      if (service === "dlq-processor") appendBackoffs(group, timeline, total);
      fall.append(group);
    }
  }

  function appendBackoffs(group, timeline, total) {
    for (const n of timeline.notifications) {
      for (const r of n.retries) {
        if (r.scheduled_ms === null || r.backoff_ms === null) continue;
        const row = el("div", "row");
        const label = el("div", "label", "backoff before retry " + (r.retry ?? "?") + " (" + n.channel + ")");
        const track = el("div", "track");
        const node = bar(r.scheduled_ms, r.backoff_ms, total, "backoff");
        node.dataset.name = "dlq.backoff";
        node.title = "waiting " + ms(r.backoff_ms) + " before retry " + (r.retry ?? "?");
        track.append(node);
        row.append(label, track);
        group.append(row);
      }
    }
  }

  let shown = null; // the last timeline, redrawn when the scale changes

  function renderTimeline(timeline) {
    shown = timeline;
    const link = timeline.links && safeLink(timeline.links.jaeger);
    if (link) {
      $("jaeger-link").href = link;
      $("jaeger-link").hidden = false;
    }
    const critical = timeline.critical_path.reduce((sum, s) => sum + (s.waiting ? 0 : s.duration_ms), 0);
    let status = "Total " + ms(timeline.total_ms) + "; result delivered after " + ms(timeline.result_ms) +
      "; " + timeline.spans.length + " spans, " + ms(critical) + " of work on the critical path.";
    if (!timeline.complete) status += " Incomplete: " + (timeline.reason || timeline.missing.join(", "));
    $("timeline-status").textContent = status;
    renderPhases(timeline);
    renderWaterfall(timeline);
  }

  const sleep = (delay) => new Promise((resolve) => setTimeout(resolve, delay));

  async function start() {
    if (!executionId) {
      say("No execution id in the address.");
      return;
    }
    $("execution-id").textContent = executionId;
    if (!token()) {
      showLogin("");
      return;
    }
    $("content").hidden = false;
    $("logout").hidden = false;
    setState("loading");
    try {
      let ex = await api("/api/v1/executions/" + encodeURIComponent(executionId));
      renderExecution(ex);
      while (!TERMINAL.has(ex.status)) {
        await sleep(POLL_MS);
        ex = await api("/api/v1/executions/" + encodeURIComponent(executionId));
        renderExecution(ex);
      }
      let timeline = null;
      for (let i = 0; i < TIMELINE_TRIES; i++) {
        timeline = await api("/api/v1/executions/" + encodeURIComponent(executionId) + "/timeline");
        renderTimeline(timeline);
        if (timeline.complete) break;
        await sleep(POLL_MS);
      }
      setState(timeline && timeline.complete ? "ready" : "incomplete");
    } catch (problem) {
      if (problem.message !== "unauthorized") {
        say(problem.message);
        setState("error");
      }
    }
  }

  $("login-form").addEventListener("submit", (event) => {
    login(event).catch((problem) => {
      $("login-error").textContent = String(problem.message || problem);
    });
  });
  $("logout").addEventListener("click", () => showLogin(""));
  $("scale").addEventListener("change", () => {
    if (shown) renderWaterfall(shown);
  });
  start();
})();
