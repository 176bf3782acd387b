// The healthchecker dashboard: plain JavaScript over the public API, nothing from elsewhere.
//
// The list comes from GET api/v1/monitors (state, last check) and GET api/v1/uptime?compact=true
// (uptime 24 h / 30 d and the last checks of each monitor), both fetched at once: the rows are
// drawn as soon as the first answers (the second takes longer: the server reads it from its
// database) and filled in when the second does. Afterwards the page stays current through
// GET api/v1/events (Server-Sent Events) without reloading. The detail view (#/monitor/NAME)
// reads the monitor, its log, uptime and incidents, and draws its history with uPlot (loaded
// when a detail view is first shown). Changes (pause, resume, maintenance, delete) ask for the
// server's token when it answers 401, and keep it for this tab only (sessionStorage).
"use strict";

(() => {
  const RECENT = 30; // checks in each row's bar and sparkline, as GET api/v1/uptime gives them
  const UPTIME = "api/v1/uptime?compact=true"; // the list's glances (index.html starts it early)
  const LOG_SHOWN = 50;
  const OUTCOME_CODE = { pass: 0, warn: 1, fail: 2 };

  const monitors = new Map(); // app -> monitor view (GET api/v1/monitors)
  // app -> { uptime_24h, uptime_30d, outcomes, latencies, times }: its last checks, newest first,
  // as columns (times in ms since the epoch), as GET api/v1/uptime?compact=true gives them.
  const glances = new Map();
  const rows = new Map(); // app -> <tr>
  let detail = null; // the app shown in the detail view
  let detailData = null; // its uptime answer, for redrawing the charts
  let charts = [];
  let source = null;

  const $ = (id) => document.getElementById(id);

  // --- small helpers -------------------------------------------------------------------------

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (value == null || value === false) continue;
        if (key === "class") node.className = value;
        else if (key === "text") node.textContent = value;
        else node.setAttribute(key, value);
      }
    }
    for (const child of children) {
      if (child == null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function ago(iso) {
    if (!iso) return "";
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }

  function duration(seconds) {
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.round(seconds / 60) + " min";
    if (seconds < 86400) return (seconds / 3600).toFixed(1) + " h";
    return (seconds / 86400).toFixed(1) + " d";
  }

  const ms = (value) => (value == null ? "–" : value < 10 ? value.toFixed(2) + " ms" : value.toFixed(0) + " ms");
  const pct = (value) => (value == null ? "–" : (value >= 99.995 ? "100" : value.toFixed(2)) + " %");
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");

  function badge(state) {
    return el("span", { class: "state " + state, text: state });
  }

  function inMaintenance(m) {
    return m.maintenance_until && Date.parse(m.maintenance_until) > Date.now();
  }

  function showError(text) {
    const node = $("error");
    node.textContent = text || "";
    node.hidden = !text;
  }

  // --- the API ---------------------------------------------------------------------------------

    // The token kept for this tab (sessionStorage): sent with reads and changes alike (a server
  // with a read_token takes it, or the token, for reads).
  const TOKEN = "healthchecker-token";

  function authorized(headers) {
    const token = sessionStorage.getItem(TOKEN);
    if (token) headers.Authorization = "Bearer " + token;
    return headers;
  }

  // After a 401 to a request sent with `sent`: a token to try again with, or null. Requests
  // refused together share one question; one refused before another request's token came
  // simply tries that one.
  let asking = null;
  async function retryToken(sent, why) {
    const now = sessionStorage.getItem(TOKEN);
    if (now && now !== sent) return now;
    if (!asking) {
      asking = askToken(why, sent ? "That token was refused." : "").then((given) => {
        asking = null;
        if (given) sessionStorage.setItem(TOKEN, given);
        return given;
      });
    }
    return asking;
  }

  // A request index.html started before this script ran, taken once.
  function early(path) {
    const started = window.healthcheckerEarly && window.healthcheckerEarly.get(path);
    if (started) window.healthcheckerEarly.delete(path);
    return started;
  }

  async function getJSON(path) {
    for (let attempt = 0; ; attempt++) {
      const started = attempt === 0 ? early(path) : null;
      const sent = started ? started.token : sessionStorage.getItem(TOKEN);
      const answer = (started && await started.answer) || await fetch(path, { headers: authorized({ Accept: "application/json" }) });
      if (answer.status === 401 && attempt < 4 && await retryToken(sent, "This server shows what it monitors only with its read token (or its token).")) continue;
      if (!answer.ok) {
        const body = await answer.json().catch(() => null);
        const error = new Error((body && body.error && body.error.message) || "HTTP " + answer.status);
        error.status = answer.status;
        throw error;
      }
      return answer.json();
    }
  }

  // A change: sends the token kept for this tab; on 401 asks for it and tries again.
  async function change(method, path, body) {
    for (let attempt = 0; attempt < 4; attempt++) {
      const sent = sessionStorage.getItem(TOKEN);
      const headers = authorized({ Accept: "application/json" });
      if (body !== undefined) headers["Content-Type"] = "application/json";
      const answer = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (answer.status === 401) {
        if (!await retryToken(sent, "This server asks for its token for changes.")) return null;
        continue;
      }
      if (!answer.ok) {
        const error = await answer.json().catch(() => null);
        throw new Error((error && error.error && error.error.message) || "HTTP " + answer.status);
      }
      return answer.status === 204 ? {} : answer.json();
    }
    return null;
  }

  function dialog(id, prepare) {
    const node = $(id);
    if (prepare) prepare(node);
    return new Promise((resolve) => {
      node.addEventListener("close", () => resolve(node.returnValue === "ok"), { once: true });
      node.returnValue = "";
      node.showModal();
    });
  }

    async function askToken(why, problem) {
    const input = $("token-input");
    const ok = await dialog("token-dialog", () => {
      input.value = "";
      $("token-why").textContent = why;
      $("token-error").textContent = problem;
      $("token-error").hidden = !problem;
    });
    return ok && input.value ? input.value : null;
  }

  // --- the list --------------------------------------------------------------------------------
  //
  // The list is a lot of rows (a thousand monitors is a thousand rows), so it is written as one
  // HTML string and parsed by the browser in one go, with few and small nodes per row: the last
  // checks are one element whose background has a band of colour per run of equal outcomes (the
  // stylesheet's mask cuts it into cells), the sparkline one SVG polyline with whole-number
  // points. Rows are laid out and painted only near the screen (`content-visibility: auto` in
  // app.css). Clicks and the bar's tooltips are handled once for the whole table.

  const ESCAPED = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  const esc = (value) => String(value).replace(/[&<>"']/g, (c) => ESCAPED[c]);
  const OUTCOME_NAME = ["pass", "warn", "fail"];
  const OUTCOME_COLOUR = ["var(--ok)", "var(--warn)", "var(--bad)", "var(--bar-empty)"];
  const NO_GLANCE = { outcomes: [], latencies: [], times: [] };
  const emptyGlance = () => ({ outcomes: [], latencies: [], times: [] });
  // A monitor of GET api/v1/uptime?compact=true as the list keeps it.
  function glanceOf(g) {
    const newest = g.newest ? Date.parse(g.newest) : 0;
    return { uptime_24h: g.uptime_24h, uptime_30d: g.uptime_30d, outcomes: g.outcomes, latencies: g.latencies_ms, times: g.before_ms.map((before) => newest - before) };
  }
  const CELL = 7; // px from one cell of the bar to the next (5 px wide, 2 px apart: app.css)
  const BAR_WIDTH = RECENT * CELL - 2;

  const shownUrl = (m) => m.url.replace(/\/$/, "") + (m.path && /^https?:/.test(m.url) ? m.path : "");

  // Until GET api/v1/uptime has answered (the rows are drawn from GET api/v1/monitors first),
  // the uptime cells say so and the bar and sparkline are empty; fillRow fills them in.
  let glancesKnown = false;
  const WAITING = "…";

  // The sparkline: the latency of the last checks, oldest on the left, as one polyline in a
  // 290 x 100 box (10 across from one check of 30 to the next).
  function spark(glance) {
    const latencies = glance.latencies;
    const n = Math.min(latencies.length, RECENT);
    let points = "";
    let title = glancesKnown ? "no checks yet" : "loading";
    if (n) {
      let max = 0;
      for (let i = 0; i < n; i++) max = Math.max(max, latencies[i]);
      title = "latency of the last " + n + " checks, up to " + ms(max);
      if (n > 1) {
        const step = 290 / (n - 1);
        const scale = 90 / (max || 1);
        for (let i = 0; i < n; i++) points += Math.round(i * step) + "," + Math.round(95 - latencies[n - 1 - i] * scale) + " ";
      }
    }
    return { title, points };
  }

  function sparkHTML(glance) {
    const { title, points } = spark(glance);
    return '<td class="c-spark" title="' + esc(title) + '"><svg class="spark" viewBox="0 0 290 100" preserveAspectRatio="none">' + (points ? '<polyline points="' + points + '"/>' : "") + "</svg></td>";
  }

  // The last checks: oldest on the left, newest on the right edge, cells without a check yet
  // empty. `outcomes` lists them (oldest first: 0 pass, 1 warn, 2 fail); the tooltip sums them
  // up, or names the check under the pointer (barTooltip); `bands` is the background drawing them.
  function bar(glance) {
    const n = Math.min(glance.outcomes.length, RECENT);
    const counts = [0, 0, 0];
    let outcomes = "";
    let bands = "";
    let kind = 3; // the run being drawn: empty cells first
    for (let i = n - 1; i >= 0; i--) {
      const outcome = glance.outcomes[i];
      counts[outcome]++;
      outcomes += outcome;
      if (outcome !== kind) {
        const cells = RECENT - 1 - i; // cells before this one
        bands += OUTCOME_COLOUR[kind] + " 0 " + cells * CELL + "px,";
        kind = outcome;
      }
    }
    bands += OUTCOME_COLOUR[kind] + " 0 " + RECENT * CELL + "px";
    const summary = n ? "last " + n + " checks: " + counts.map((count, k) => (count ? count + " " + OUTCOME_NAME[k] : "")).filter(Boolean).join(", ") : glancesKnown ? "no checks yet" : "loading";
    return { summary, outcomes, newest: n ? new Date(glance.times[0]).toISOString() : "", image: n ? "linear-gradient(90deg," + bands + ")" : "" };
  }

  function barHTML(glance) {
    const { summary, outcomes, newest, image } = bar(glance);
    return '<td class="c-bar" title="' + summary + '"><i class="bar" role="img" aria-label="' + summary +
      '" data-outcomes="' + outcomes + '" data-newest="' + newest + (image ? '" style="background-image:' + image + '"' : '"') + "></i></td>";
  }

  const uptimeText = (value) => (glancesKnown ? pct(value) : WAITING);

  function rowHTML(m) {
    const glance = glances.get(m.app) || NO_GLANCE;
    const app = esc(m.app);
    const state = esc(m.state);
    return '<tr data-app="' + app + '" data-state="' + state + '"' + (matches(m) ? "" : " hidden") + ">" +
      '<td class="c-name"><a class="app-name" href="#/monitor/' + esc(encodeURIComponent(m.app)) + '">' + app + '</a><span class="app-url">' + esc(shownUrl(m)) + "</span></td>" +
      '<td class="c-state"><span class="state ' + state + '">' + state + "</span>" +
      (m.paused ? '<span class="tag">paused</span>' : "") +
      (inMaintenance(m) ? '<span class="tag maint">maintenance</span>' : "") +
      (m.flapping ? '<span class="tag flap">flapping</span>' : "") + "</td>" +
      '<td class="num c-up24">' + uptimeText(glance.uptime_24h) + "</td>" +
      '<td class="num c-up30">' + uptimeText(glance.uptime_30d) + "</td>" +
      sparkHTML(glance) +
      barHTML(glance) +
      '<td class="c-since" data-since="' + esc(m.since || "") + '">' + (m.since ? ago(m.since) : "–") + "</td></tr>";
  }

  // Puts a row's glance (uptime, sparkline, bar) into the row rowHTML drew: a few attributes and
  // texts instead of a row parsed again, for the thousand rows at once when GET api/v1/uptime
  // answers after they were drawn.
  function fillRow(tr, glance) {
    const [, , up24, up30, sparkCell, barCell] = tr.cells;
    up24.textContent = uptimeText(glance.uptime_24h);
    up30.textContent = uptimeText(glance.uptime_30d);
    const line = spark(glance);
    sparkCell.title = line.title;
    const svg = sparkCell.firstChild;
    if (!line.points) svg.replaceChildren();
    else (svg.firstChild || svg.appendChild(document.createElementNS("http://www.w3.org/2000/svg", "polyline"))).setAttribute("points", line.points);
    const cells = bar(glance);
    const node = barCell.firstChild;
    barCell.title = cells.summary;
    node.setAttribute("aria-label", cells.summary);
    node.dataset.outcomes = cells.outcomes;
    node.dataset.newest = cells.newest;
    node.style.backgroundImage = cells.image;
  }

  // One row as a node, for a live change of one monitor.
  const parser = document.createElement("template");
  function rowNode(m) {
    parser.innerHTML = rowHTML(m);
    return parser.content.firstElementChild;
  }

  let filterText = "";
  function matches(m) {
    return !filterText || m.app.toLowerCase().includes(filterText) || m.url.toLowerCase().includes(filterText);
  }

  const byName = (a, b) => (a.app < b.app ? -1 : a.app > b.app ? 1 : 0);

  function renderList() {
    const body = $("rows");
    filterText = $("filter").value.trim().toLowerCase(); // as the browser may have restored it
    const sorted = [...monitors.values()].sort(byName);
    body.innerHTML = sorted.map(rowHTML).join("");
    rows.clear();
    for (const tr of body.rows) rows.set(tr.dataset.app, tr);
    $("empty").hidden = monitors.size > 0;
    summarize();
  }

  function updateRow(app) {
    const m = monitors.get(app);
    const old = rows.get(app);
    if (!m) {
      if (old) old.remove();
      rows.delete(app);
      summarize();
      return;
    }
    if (!old) {
      renderList();
      return;
    }
    const tr = rowNode(m);
    old.replaceWith(tr);
    rows.set(app, tr);
    summarize();
  }

  // The check under the pointer, as the bar's tooltip.
  function barTooltip(event) {
    const bar = event.target.closest && event.target.closest(".bar");
    if (!bar) return;
    const tr = bar.closest("tr");
    const glance = glances.get(tr.dataset.app) || NO_GLANCE;
    const box = bar.getBoundingClientRect();
    const cell = Math.floor(((event.clientX - box.left) / box.width) * BAR_WIDTH / CELL);
    const i = RECENT - 1 - Math.min(RECENT - 1, Math.max(0, cell));
    const text = i < glance.outcomes.length ? new Date(glance.times[i]).toLocaleString() + ": " + OUTCOME_NAME[glance.outcomes[i]] + ", " + ms(glance.latencies[i]) : "no check yet";
    if (bar.parentNode.title !== text) bar.parentNode.title = text;
  }

  function summarize() {
    const counts = {};
    for (const m of monitors.values()) counts[m.state] = (counts[m.state] || 0) + 1;
    $("summary").textContent = monitors.size + " monitored" +
      ["UNHEALTHY", "DEGRADED", "HEALTHY", "UNKNOWN"].filter((s) => counts[s]).map((s) => ", " + counts[s] + " " + s.toLowerCase()).join("");
    document.title = (counts.UNHEALTHY ? "(" + counts.UNHEALTHY + " down) " : "") + "healthchecker";
  }

  // Checks that came live before the first list did, applied once it is there.
  let beforeList = [];

  // The list: drawn as soon as GET api/v1/monitors answers (names and states: the first
  // render), its glances filled in once GET api/v1/uptime answers and the rows are painted (both
  // requests start together, in index.html; the glances take longer, the server reads them from
  // its database). Live checks wait until both are there.
  async function load() {
    const glancing = getJSON(UPTIME);
    let uptime = null;
    glancing.then((answer) => { uptime = answer; }, () => {});
    const list = await getJSON("api/v1/monitors");
    performance.mark("healthchecker:list-answered");
    monitors.clear();
    for (const m of list.monitors) monitors.set(m.app, m);
    const drawn = uptime;
    if (drawn) setGlances(drawn);
    renderList();
    performance.mark("healthchecker:list-rendered");
    // A tab in the background draws no frames: its glances do not wait for one.
    const painted = Promise.race([afterPaint("healthchecker:list-painted"), new Promise((resolve) => setTimeout(resolve, PAINT_WAIT_MS))]);
    if (!drawn) {
      const [answer] = await Promise.all([glancing, painted]);
      setGlances(answer);
      for (const [app, tr] of rows) fillRow(tr, glances.get(app) || NO_GLANCE);
    }
    performance.mark("healthchecker:glances-rendered");
    afterPaint("healthchecker:glances-painted");
    const waiting = beforeList || [];
    beforeList = null;
    for (const event of waiting) onCheck(event);
  }

  const PAINT_WAIT_MS = 250;

  // Marks `name` once what is in the page now is painted: the frame after next is drawn after it
  // (what the bench measures); resolves then.
  function afterPaint(name) {
    return new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => {
      performance.mark(name);
      resolve();
    })));
  }

  function setGlances(uptime) {
    glances.clear();
    for (const g of uptime.monitors) glances.set(g.app, glanceOf(g));
    glancesKnown = true;
  }

  async function refreshUptime() {
    try {
      const uptime = await getJSON(UPTIME);
      for (const answer of uptime.monitors) {
        const g = glanceOf(answer);
        const known = glances.get(answer.app);
        // Keep checks that came live and are newer than what the database had then.
        if (known && known.times.length && g.times.length && known.times[0] > g.times[0]) {
          g.outcomes = known.outcomes;
          g.latencies = known.latencies;
          g.times = known.times;
        }
        glances.set(answer.app, g);
      }
      if (!detail) renderList();
    } catch (error) {
      showError("cannot reach the server: " + error.message);
    }
  }

  // --- live ------------------------------------------------------------------------------------

    // The event stream, read with fetch rather than an EventSource, which cannot send the token.
  // When it ends or fails it is opened again after RECONNECT_MS; what happened meanwhile is read
  // again once it is back ("ready").
  const RECONNECT_MS = 2000;
  let streamed = false; // a stream has been ready before

  async function connect() {
    if (source) source.abort();
    const mine = new AbortController();
    source = mine;
    try {
      const answer = await fetch("api/v1/events", { headers: authorized({ Accept: "text/event-stream" }), signal: mine.signal });
      if (answer.ok) await readEvents(answer.body, mine);
    } catch (error) {
      if (mine.signal.aborted) return;
    }
    if (source !== mine) return;
    const live = $("live");
    live.textContent = "reconnecting…";
    live.className = "live off";
    document.documentElement.dataset.live = "0";
    setTimeout(() => { if (source === mine) connect(); }, RECONNECT_MS);
  }

  // Reads Server-Sent Events from `body` until it ends: blocks separated by a blank line, each
  // with an `event:` name and `data:` lines; comments (keep-alives) start with ":".
  async function readEvents(body, mine) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done || source !== mine) return;
      text += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = text.indexOf("\n\n")) >= 0) {
        const block = text.slice(0, end);
        text = text.slice(end + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) await onEvent(name, data.join("\n"), mine);
      }
    }
  }

  async function onEvent(name, data, mine) {
    switch (name) {
      case "ready": {
        const live = $("live");
        live.textContent = "live";
        live.className = "live on";
        document.documentElement.dataset.live = "1";
        showError("");
        if (streamed) {
          await load().catch((error) => showError("cannot reach the server: " + error.message));
          if (detail) showDetail(detail);
        }
        streamed = true;
        break;
      }
      case "check": onCheck(JSON.parse(data)); break;
      case "transition": onTransition(JSON.parse(data)); break;
      case "maintenance": onMaintenance(JSON.parse(data)); break;
      case "monitor": onMonitor(JSON.parse(data)); break;
      case "lagged":
        // The server dropped this stream (it fell behind): the reconnection reads all again.
        mine.abort();
        source = null;
        setTimeout(connect, 1000);
        break;
    }
  }

  function onCheck(event) {
    if (beforeList) {
      if (beforeList.length < 10000) beforeList.push(event);
      return;
    }
    const { app, check } = event;
    const m = monitors.get(app);
    if (!m) return;
    const glance = glances.get(app) || emptyGlance();
    const time = Date.parse(check.time);
    // One the list already had (it came live while the list was read).
    if (glance.times.length && time <= glance.times[0]) return;
    m.state = check.state;
    m.last_check = check;
    glance.times.unshift(time);
    glance.outcomes.unshift(OUTCOME_CODE[check.outcome]);
    glance.latencies.unshift(check.latency_ms);
    const kept = Math.min(glance.times.length, RECENT);
    glance.times.length = glance.outcomes.length = glance.latencies.length = kept;
    glances.set(app, glance);
    updateRow(app);
    if (detail === app) {
      renderHead(m);
      const body = $("log").tBodies[0];
      body.prepend(logRow(check));
      while (body.rows.length > LOG_SHOWN) body.deleteRow(-1);
    }
  }

  function onTransition({ app, transition }) {
    const m = monitors.get(app);
    if (!m) return;
    m.state = transition.to;
    m.since = transition.time;
    m.last_transition = transition;
    updateRow(app);
    if (detail === app) {
      renderHead(m);
      $("transitions").tBodies[0].prepend(transitionRow(transition));
      loadIncidents(app);
    }
  }

  function onMaintenance({ app, until, reason }) {
    const m = monitors.get(app);
    if (!m) return;
    m.maintenance_until = until;
    m.maintenance_reason = reason;
    updateRow(app);
    if (detail === app) renderHead(m);
  }

  async function onMonitor({ app, change }) {
    if (change === "removed") {
      monitors.delete(app);
      glances.delete(app);
      updateRow(app);
      if (detail === app) location.hash = "#/";
      return;
    }
    try {
      const m = await getJSON("api/v1/monitors/" + encodeURIComponent(app));
      delete m.transitions;
      monitors.set(app, m);
      if (!glances.has(app)) glances.set(app, emptyGlance());
      updateRow(app);
      if (detail === app) renderHead(m);
    } catch (error) {
      if (error.status !== 404) showError(error.message);
    }
  }

  // --- the detail view -------------------------------------------------------------------------

  function renderHead(m) {
    $("d-name").textContent = m.app;
    const state = $("d-state");
    state.replaceChildren(badge(m.state));
    if (m.paused) state.append(el("span", { class: "tag", text: "paused" }));
    if (m.flapping) state.append(el("span", { class: "tag flap", text: "flapping" }));
    $("d-url").textContent = m.url.replace(/\/$/, "") + (/^https?:/.test(m.url) ? m.path : "") +
      " · every " + m.interval + " s, timeout " + m.timeout + " s, unhealthy after " + m.unhealthy + ", healthy after " + m.healthy +
      (m.email && m.email.length ? " · mail to " + m.email.join(", ") : "");
    $("a-pause").hidden = m.paused;
    $("a-resume").hidden = !m.paused;
    const maintenance = inMaintenance(m);
    $("a-end-maintenance").hidden = !maintenance;
    const note = $("d-note");
    note.hidden = !maintenance;
    note.textContent = maintenance ? "In maintenance until " + when(m.maintenance_until) + (m.maintenance_reason ? " (" + m.maintenance_reason + ")" : "") + ": nothing is sent." : "";
    renderCards(m);
  }

  function card(label, value, sub) {
    return el("div", { class: "card" }, el("div", { class: "label", text: label }), el("div", { class: "value", text: value }), sub ? el("div", { class: "sub", text: sub }) : null);
  }

  function renderCards(m) {
    const cards = [];
    if (detailData) {
      for (const w of detailData.windows) {
        cards.push(card("Uptime " + w.window.replace("h", " h").replace("d", " d"), pct(w.uptime_percent), w.checks + " checks, mean " + ms(w.latency_mean_ms)));
      }
    }
    const check = m.last_check;
    cards.push(card("Last check", check ? ms(check.latency_ms) : "–", check ? check.outcome + " (" + check.reason + "), " + ago(check.time) + " ago" : "not yet"));
    cards.push(card("Since", m.since ? ago(m.since) : "–", m.since ? when(m.since) : "never changed"));
    const notAfter = check && check.cert_not_after;
    if (notAfter) {
      const days = Math.floor((Date.parse(notAfter) - Date.now()) / 86400000);
      cards.push(card("Certificate", days < 0 ? "expired" : days + " days left", "expires " + when(notAfter)));
    }
    $("d-cards").replaceChildren(...cards);
  }

  function logRow(c) {
    return el("tr", null,
      el("td", { text: when(c.time) }),
      el("td", { class: c.outcome, text: c.outcome }),
      el("td", { text: c.reason }),
      el("td", { class: "num", text: c.http_status == null ? "" : c.http_status }),
      el("td", { class: "num", text: ms(c.latency_ms) }),
      el("td", null, badge(c.state)),
            el("td", { class: "muted", text: c.detail || "" }),
      el("td", { class: "body", text: kept(c) }));
  }

  // What the log kept of a check's body: a health answer as it is, any other body only as its
  // size and keyed hash (the server never keeps what it says).
  function kept(c) {
    if (c.body != null) return JSON.stringify(c.body);
    if (c.body_digest) return c.body_digest.size + " bytes, hash " + c.body_digest.hash + " (not kept)";
    return "";
  }

  function transitionRow(t) {
    return el("tr", null, el("td", { text: when(t.time) }), el("td", null, badge(t.from)), el("td", null, badge(t.to)), el("td", { text: t.reason }));
  }

  async function loadIncidents(app) {
    const answer = await getJSON("api/v1/monitors/" + encodeURIComponent(app) + "/incidents?limit=50");
    if (detail !== app) return;
    $("incidents").tBodies[0].replaceChildren(...(answer.incidents.length ? answer.incidents.map((i) => {
      const m = i.messages;
      const told = m.sent + m.logged;
      return el("tr", null,
        el("td", { text: when(i.opened_at) }),
        el("td", { text: i.closed_at ? when(i.closed_at) : "open" }),
        el("td", { class: "num", text: duration(i.downtime_s) }),
        el("td", { text: i.reason }),
        el("td", { class: "num", text: told + (m.pending ? " (+" + m.pending + " waiting)" : "") + (m.failed ? " (" + m.failed + " failed)" : "") }));
    }) : [el("tr", null, el("td", { colspan: "5", class: "muted", text: "no incident" }))]));
  }

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  // uPlot is loaded when a monitor's page is first shown (the list does not need it).
  let charting = null;
  function loadCharts() {
    if (!charting) {
      charting = new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = "assets/uPlot.iife.min.js";
        script.onload = resolve;
        script.onerror = () => {
          charting = null;
          reject(new Error("cannot load assets/uPlot.iife.min.js"));
        };
        document.head.append(script);
      });
    }
    return charting;
  }

  function drawCharts() {
    for (const chart of charts) chart.destroy();
    charts = [];
    if (!detailData || typeof uPlot === "undefined") return;
    const width = Math.max(240, $("chart-hourly").clientWidth || 600);
    const axis = { stroke: cssVar("--muted"), grid: { stroke: cssVar("--soft") }, ticks: { stroke: cssVar("--soft") } };
    const up = (b) => (b.checks ? ((b.passes + b.warns) * 100) / b.checks : null);
    const now = Date.now() / 1000;
    // The whole window, whatever part of it has checks.
    const last = (days) => ({ time: true, range: () => [now - days * 86400, now] });
    const hourly = detailData.hourly;
    charts.push(new uPlot({
      width, height: 220,
      series: [
        {},
        { label: "uptime %", stroke: cssVar("--ok"), scale: "%", value: (u, v) => (v == null ? "–" : v.toFixed(2) + " %") },
        { label: "mean latency", stroke: cssVar("--accent"), scale: "ms", value: (u, v) => (v == null ? "–" : v.toFixed(1) + " ms") },
      ],
      scales: { x: last(30), "%": { range: [0, 100] } },
      axes: [axis, { ...axis, scale: "%" }, { ...axis, scale: "ms", side: 1 }],
    }, [
      hourly.map((b) => Date.parse(b.start) / 1000),
      hourly.map(up),
      hourly.map((b) => (b.checks ? b.latency_sum_ms / b.checks : null)),
    ], $("chart-hourly")));
    const daily = detailData.daily;
    charts.push(new uPlot({
      width, height: 220,
      series: [{}, { label: "uptime %", stroke: cssVar("--ok"), fill: "rgba(63,185,80,.12)", value: (u, v) => (v == null ? "–" : v.toFixed(2) + " %") }],
      scales: { x: last(400), y: { range: [0, 100] } },
      axes: [axis, axis],
    }, [daily.map((b) => Date.parse(b.start) / 1000), daily.map(up)], $("chart-daily")));
  }

  async function showDetail(app) {
    detail = app;
    detailData = null;
    $("list-view").hidden = true;
    $("detail-view").hidden = false;
    const path = "api/v1/monitors/" + encodeURIComponent(app);
    try {
      const [m, log, uptime] = await Promise.all([getJSON(path), getJSON(path + "/log?limit=" + LOG_SHOWN), getJSON(path + "/uptime"), loadCharts()]);
      if (detail !== app) return;
      const transitions = m.transitions || [];
      delete m.transitions;
      monitors.set(app, m);
      detailData = uptime;
      renderHead(m);
      $("transitions").tBodies[0].replaceChildren(...transitions.map(transitionRow));
      $("log").tBodies[0].replaceChildren(...log.checks.map(logRow));
      drawCharts();
      await loadIncidents(app);
      document.documentElement.dataset.detail = app;
    } catch (error) {
      if (error.status === 404) {
        location.hash = "#/";
        showError("no monitor named " + app);
      } else {
        showError("cannot reach the server: " + error.message);
      }
    }
  }

  function showList() {
    detail = null;
    detailData = null;
    for (const chart of charts) chart.destroy();
    charts = [];
    delete document.documentElement.dataset.detail;
    $("detail-view").hidden = true;
    $("list-view").hidden = false;
    renderList();
  }

    // `#/monitor/<app>` is a monitor's page (the mail links there); `#<app>` too, as links in
  // mail sent before the dashboard had pages.
  function route() {
    const match = /^#\/monitor\/(.+)$/.exec(location.hash) || /^#([^/].*)$/.exec(location.hash);
    if (match) showDetail(decodeURIComponent(match[1]));
    else showList();
  }

  async function act(run) {
    try {
      showError("");
      const answer = await run();
      if (answer && answer.app) {
        monitors.set(answer.app, answer);
        if (detail === answer.app) renderHead(answer);
      }
    } catch (error) {
      showError(error.message);
    }
  }

  function wire() {
    const path = () => "api/v1/monitors/" + encodeURIComponent(detail);
    $("a-pause").addEventListener("click", () => act(() => change("POST", path() + "/pause")));
    $("a-resume").addEventListener("click", () => act(() => change("POST", path() + "/resume")));
    $("a-maintenance").addEventListener("click", async () => {
      if (!(await dialog("maintenance-dialog"))) return;
      const minutes = Number($("maintenance-minutes").value);
      const reason = $("maintenance-reason").value.trim();
      act(() => change("POST", path() + "/maintenance", reason ? { minutes, reason } : { minutes }));
    });
    $("a-end-maintenance").addEventListener("click", () => act(() => change("DELETE", path() + "/maintenance")));
    $("a-delete").addEventListener("click", async () => {
      const app = detail;
      if (!(await dialog("delete-dialog", () => { $("delete-name").textContent = app; }))) return;
      act(async () => {
        const done = await change("DELETE", "api/v1/monitors/" + encodeURIComponent(app));
        if (done) {
          monitors.delete(app);
          location.hash = "#/";
        }
        return null;
      });
    });
    $("filter").addEventListener("input", () => {
      filterText = $("filter").value.trim().toLowerCase();
      for (const [app, tr] of rows) tr.hidden = !matches(monitors.get(app));
    });
    const body = $("rows");
    body.addEventListener("click", (event) => {
      const tr = event.target.closest("tr[data-app]");
      if (!tr || event.target.closest("a")) return;
      location.hash = "#/monitor/" + encodeURIComponent(tr.dataset.app);
    });
    body.addEventListener("mousemove", barTooltip);
    $("example").textContent = "curl -X PUT -H 'Content-Type: application/json' -d '{\"url\": \"http://192.168.1.20:9090\", \"email\": \"me@example.com\"}' " + location.origin + "/api/v1/monitors/my-app";
    window.addEventListener("hashchange", route);
    let resize = null;
    window.addEventListener("resize", () => {
      clearTimeout(resize);
      resize = setTimeout(drawCharts, 150);
    });
    // Times since the last change tick on their own.
    setInterval(() => {
      if (detail) return;
      for (const cell of document.querySelectorAll("td[data-since]")) {
        if (!cell.dataset.since) continue;
        const text = ago(cell.dataset.since);
        if (cell.textContent !== text) cell.textContent = text;
      }
    }, 1000);
    // Uptime figures are aggregated by the server; read them again now and then.
    setInterval(refreshUptime, 60000);
  }

  async function start() {
    wire();
    connect();
    try {
      await load();
      document.documentElement.dataset.ready = "1";
    } catch (error) {
      showError("cannot reach the server: " + error.message);
    }
    if (location.hash) route();
  }

  start();
})();
