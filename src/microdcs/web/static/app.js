// Live updates of the operator pages: one EventSource per page ("snapshot" first, then
// "update" events with whole rows), applied in place. No framework, no build step.
"use strict";

(function () {
  const body = document.body;
  const page = body.dataset.page;
  const root = body.dataset.root || "";

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) node.append(c instanceof Node ? c : String(c ?? ""));
    return node;
  }
  function when(seconds) {
    if (seconds === null || seconds === undefined) return "";
    return new Date(seconds * 1000).toISOString().slice(0, 19).replace("T", " ");
  }
  function esc(text) { return CSS.escape(String(text)); }
  function scopeUrl(text) { return encodeURIComponent(text); }

  function connect(url, handlers) {
    const state = document.getElementById("live-state");
    const source = new EventSource(url);
    source.addEventListener("open", () => { if (state) state.className = "live-state on"; });
    source.addEventListener("error", () => { if (state) state.className = "live-state off"; });
    for (const name of ["snapshot", "update"]) {
      source.addEventListener(name, (event) => {
        const data = JSON.parse(event.data);
        handlers[name](data);
        body.dataset.updates = String(Number(body.dataset.updates || 0) + 1);
        if (data && data.mark !== undefined) body.dataset.mark = String(data.mark);
      });
    }
    return source;
  }

  // -- overview ---------------------------------------------------------------------
  function overview(data) {
    const jobs = document.querySelector("#job-scopes tbody");
    const states = [...document.querySelectorAll("#job-scopes thead th")].slice(1, -1)
      .map((th) => th.textContent);
    jobs.replaceChildren(...data.jobs.map((row) => el("tr", { "data-scope": row.scope },
      el("td", {}, el("a", { href: `${root}/scopes/${scopeUrl(row.scope)}/jobs` }, row.scope)),
      ...states.map((s) => el("td", { class: "num", "data-state": s }, row.counts[s] || 0)),
      el("td", { class: "num total" }, row.total))));
    const alarms = document.querySelector("#alarm-scopes tbody");
    alarms.replaceChildren(...data.alarms.map((row) => el("tr", { "data-scope": row.scope },
      el("td", {}, el("a", { href: `${root}/scopes/${scopeUrl(row.scope)}/alarms` }, row.scope)),
      ...["critical", "high", "medium", "low"].map((p) =>
        el("td", { class: `num prio-${p}`, "data-priority": p }, row.byPriority[p])),
      el("td", { class: "num unacked" }, row.unacknowledged))));
    const tags = document.getElementById("tag-scopes");
    if (data.tags.length) {
      tags.replaceChildren(...data.tags.map((row) => el("li", {},
        el("a", { href: `${root}/scopes/${scopeUrl(row.scope)}/tags` }, row.scope),
        ` (${row.count} tags)`)));
    }
    const reps = document.querySelector("#replicas tbody");
    reps.replaceChildren(...data.replicas.map((r) => el("tr", { "data-name": r.name },
      el("td", {}, r.name),
      el("td", { class: r.ready ? "ok" : "bad" }, r.ready ? "ready" : "not ready"),
      el("td", {}, r.leader ? "leader" : "standby"),
      el("td", { class: "num" }, r.lag === null ? "" : `${r.lag.toFixed(2)} s`),
      el("td", { class: "num" }, r.sfcActive === null ? "" : r.sfcActive))));
  }

  // -- jobs -----------------------------------------------------------------------------
  function jobsPage() {
    const table = document.getElementById("jobs");
    const tbody = table.querySelector("tbody");
    const filter = document.getElementById("state-filter");
    const base = table.dataset.scopeUrl;
    function applyFilter() {
      const wanted = filter.value;
      let shown = 0;
      for (const tr of tbody.rows) {
        const hide = Boolean(wanted) && tr.dataset.state !== wanted;
        tr.hidden = hide;
        if (!hide) shown += 1;
      }
      document.getElementById("job-count").textContent = `${shown} shown`;
      const url = new URL(location.href);
      if (wanted) url.searchParams.set("state", wanted); else url.searchParams.delete("state");
      history.replaceState(null, "", url);
    }
    function row(r) {
      return el("tr", { id: `job-${r.id}`, "data-id": r.id, "data-state": r.state },
        el("td", {}, el("a", { href: base + encodeURIComponent(r.id) }, r.id)),
        el("td", {}, r.workMaster), el("td", { class: `state st-${r.state}` }, r.state),
        el("td", {}, r.substate), el("td", {}, r.start), el("td", {}, r.end));
    }
    function apply(data, replace) {
      if (replace) tbody.replaceChildren();
      for (const r of data.rows) {
        const old = document.getElementById(`job-${r.id}`);
        if (old) old.replaceWith(row(r)); else tbody.append(row(r));
      }
      for (const id of data.removed) document.getElementById(`job-${id}`)?.remove();
      applyFilter();
    }
    filter.addEventListener("change", applyFilter);
    connect(body.dataset.live, { snapshot: (d) => apply(d, true), update: (d) => apply(d, false) });
  }

  // -- job detail -------------------------------------------------------------------
  function jobPage() {
    function apply(data) {
      if (!data) return;
      const r = data.row;
      const state = document.getElementById("job-state");
      state.textContent = r.substate ? `${r.state}.${r.substate}` : r.state;
      state.className = `state st-${r.state}`;
      document.getElementById("job-start").textContent = r.start;
      document.getElementById("job-end").textContent = r.end;
      document.getElementById("history").replaceChildren(
        ...data.history.map((h) => el("li", {}, `${when(h.at)} ${h.status}`)));
      document.getElementById("response").textContent = JSON.stringify(data.response, null, 2);
      const p = data.progress;
      document.getElementById("recipe-status").textContent = p ? p.status : "";
      const chart = document.querySelector("#chart svg");
      if (!chart || !p) return;
      const visited = new Set(p.visits.map((v) => v.step));
      const active = new Set(p.active);
      for (const g of chart.querySelectorAll("g.step")) {
        g.classList.toggle("active", active.has(g.dataset.step));
        g.classList.toggle("visited", visited.has(g.dataset.step) && !active.has(g.dataset.step));
      }
      for (const t of chart.querySelectorAll("tspan.timer")) t.textContent = "";
      for (const a of chart.querySelectorAll("text.action")) delete a.dataset.status;
      for (const run of p.runs) {
        const text = document.getElementById(`action-${run.step}-${run.action}`.replace(/\s/g, "_"));
        if (text) text.dataset.status = run.status;
      }
      timers = p.timers;
      drawTimers();
      document.getElementById("visits").replaceChildren(...p.visits.slice(-20).map((v) =>
        el("li", {}, `${v.step} #${v.activation}: ${when(v.entered)}${v.left ? " \u2192 " + when(v.left) : " (active)"}`)));
    }
    let timers = [];
    function drawTimers() {
      const now = Date.now() / 1000;
      const list = document.getElementById("timers");
      if (!list) return;
      list.replaceChildren(...timers.map((t) => {
        const left = t.due !== null ? Math.max(t.due - now, 0) : t.remaining;
        const label = `${t.kind} ${t.step}${t.action ? "/" + t.action : ""}: ${left === null ? "?" : left.toFixed(1) + " s"}${t.due === null ? " (paused)" : ""}`;
        const span = document.querySelector(`#action-${esc(t.step.replace(/\s/g, "_"))}-${esc(t.action.replace(/\s/g, "_"))} tspan.timer`);
        if (span && left !== null) span.textContent = ` ${t.kind} ${left.toFixed(1)}s`;
        return el("li", {}, label);
      }));
    }
    setInterval(drawTimers, 250);
    const initial = document.getElementById("initial");
    if (initial) apply(JSON.parse(initial.textContent));
    connect(body.dataset.live, { snapshot: apply, update: apply });
  }

  // -- alarms ---------------------------------------------------------------------------
  function alarmsPage() {
    const table = document.getElementById("alarms");
    const tbody = table.querySelector("tbody");
    const operator = table.dataset.operator === "yes";
    const forms = document.getElementById("action-forms");
    function actionForm(alarm, name) {
      const proto = forms.content.querySelector(`form[action$="/ALARM/${name}"]`);
      if (!proto) return null;
      const form = proto.cloneNode(true);
      form.action = table.dataset.actionUrl + encodeURIComponent(alarm) + "/" + name;
      return form;
    }
    function row(a) {
      const cells = [
        el("td", {}, a.priority), el("td", {}, a.alarm), el("td", {}, a.tag),
        el("td", {}, a.message),
        el("td", { class: "state" }, a.state + (a.shelvedUntil ? ` until ${when(a.shelvedUntil)}` : "")),
        el("td", {}, a.value ?? ""), el("td", {}, when(a.activeSince || a.changedAt)),
        el("td", {}, (a.operator || "") + (a.comment ? `: ${a.comment}` : "")),
      ];
      if (operator) {
        const names = [];
        if (a.state === "unacknowledged" || a.state === "returned_unacknowledged") names.push("acknowledge");
        if (a.state === "shelved") names.push("unshelve");
        else if (a.state !== "suppressed_by_design" && a.state !== "out_of_service") names.push("shelve");
        if (a.state === "latched") names.push("reset");
        cells.push(el("td", { class: "actions" }, ...names.map((n) => actionForm(a.alarm, n)).filter(Boolean)));
      }
      return el("tr", { id: `alarm-${a.alarm}`, "data-id": a.alarm, "data-state": a.state,
        class: `prio-${a.priority}` }, ...cells);
    }
    function apply(data) {
      if (data.alarms.length === 0) {
        tbody.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: 9 }, "No alarm is active.")));
      } else {
        tbody.replaceChildren(...data.alarms.map(row));
      }
    }
    connect(body.dataset.live, { snapshot: apply, update: apply });
  }

  // -- tags -------------------------------------------------------------------------------
  function tagsPage() {
    function spark(svg, values) {
      const line = svg.querySelector("polyline");
      if (!values || values.length < 2) { line.setAttribute("points", ""); return; }
      const lo = Math.min(...values), hi = Math.max(...values);
      const span = hi - lo || 1;
      const step = 118 / (values.length - 1);
      line.setAttribute("points", values.map((v, i) =>
        `${(1 + i * step).toFixed(1)},${(22 - ((v - lo) / span) * 20).toFixed(1)}`).join(" "));
    }
    const trends = {};
    let points = 60;
    function apply(data, snapshot) {
      if (snapshot) points = data.points || points;
      for (const t of data.tags) {
        const tr = document.getElementById(`tag-${t.tag}`);
        if (!tr) continue;
        if (snapshot) trends[t.tag] = t.trend || [];
        else if (typeof t.value === "number") {
          const trend = (trends[t.tag] = trends[t.tag] || []);
          trend.push(t.value);
          if (trend.length > points) trend.splice(0, trend.length - points);
        }
        tr.querySelector(".value").textContent = t.value ?? "";
        const q = tr.querySelector(".quality");
        q.textContent = t.quality + (t.stale ? " (stale)" : "");
        q.className = `quality q-${t.quality}`;
        tr.querySelector(".time").textContent = when(t.time);
        spark(tr.querySelector("svg.spark"), trends[t.tag]);
      }
    }
    connect(body.dataset.live, { snapshot: (d) => apply(d, true), update: (d) => apply(d, false) });
  }

  const pages = {
    overview: () => connect(body.dataset.live, { snapshot: overview, update: overview }),
    jobs: jobsPage, job: jobPage, alarms: alarmsPage, tags: tagsPage,
  };
  if (pages[page]) pages[page]();
})();
