// mlmeta page: vanilla JavaScript, no build step. Three views routed on
// the path: "/" (models table), "/model/NAME" (one model), "/compare"
// (several models overlaid). Everything a view shows is in its URL
// (project, filter, sort, page, compare selection), so URLs can be shared.
//
// window.mlmeta exposes what the browser tests and the figures read:
//   series  - {metric: {model: {epochs: [...], values: [...]}}} behind each chart
//   ready   - true once the current view is drawn
//   drawMs  - milliseconds the charts of the view took to draw
//   renderMs - performance.now() when the view was first drawn
"use strict";

window.mlmeta = { series: {}, ready: false, drawMs: null, renderMs: null, view: "" };

const PAGE_SIZE = 100;
const COLORS = ["#2f6fdf", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0c8599", "#a61e4d",
  "#5c940d", "#d9480f", "#364fc7", "#862e9c", "#087f5b", "#e67700", "#1864ab", "#c92a2a",
  "#495057", "#9c36b5", "#2f9e44", "#f08c00", "#0b7285"];

let live = null; // the EventSource of the model view, closed on navigation
let charts = []; // uPlot instances of the view, resized with the window

const main = () => document.getElementById("main");

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// JSON numbers, or "NaN", "inf", "-inf" (which JSON cannot carry).
function num(value) {
  if (value === "NaN") return NaN;
  if (value === "inf") return Infinity;
  if (value === "-inf") return -Infinity;
  return value;
}

function fmt(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") {
    if (Number.isInteger(value) || !Number.isFinite(value)) return String(value);
    // Five significant digits for the table; the exact value is the title.
    return String(Number(value.toPrecision(5)));
  }
  return String(value);
}

function time(micros) {
  if (micros === null || micros === undefined) return "";
  return new Date(micros / 1000).toISOString().replace("T", " ").slice(0, 19);
}

function statusBadge(status) {
  return el("span", { class: "status status-" + status }, status);
}

class ApiError extends Error {}

async function api(path) {
  const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (response.status === 401) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    throw new ApiError("log in first");
  }
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new ApiError(body.error || response.statusText);
  return body;
}

function params() {
  return new URLSearchParams(location.search);
}

function project() {
  return params().get("project") || "default";
}

function projectApi(rest) {
  return "/api/v1/projects/" + encodeURIComponent(project()) + rest;
}

function url(path, query) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return path + (text ? "?" + text : "");
}

function navigate(target, replace) {
  if (replace) history.replaceState(null, "", target);
  else history.pushState(null, "", target);
  route();
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-nav]");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  navigate(link.getAttribute("href"));
});
window.addEventListener("popstate", () => route());
window.addEventListener("resize", () => {
  for (const chart of charts) chart.setSize(chartSize(chart.root.parentElement));
});

function begin(view) {
  if (live) { live.close(); live = null; }
  for (const chart of charts) chart.destroy();
  charts = [];
  Object.assign(window.mlmeta, { series: {}, ready: false, drawMs: null, view });
}

function done() {
  window.mlmeta.ready = true;
  if (window.mlmeta.renderMs === null) window.mlmeta.renderMs = performance.now();
}

async function route() {
  const path = location.pathname;
  try {
    if (path === "/") await modelsView();
    else if (path === "/compare") await compareView();
    else if (path.startsWith("/model/")) await modelView(decodeURIComponent(path.slice("/model/".length)));
    else { begin("missing"); main().replaceChildren(el("p", { class: "error" }, "No such page: " + path)); done(); }
  } catch (error) {
    main().replaceChildren(el("p", { class: "error", id: "page-error", role: "alert" }, error.message));
    done();
  }
}

// The project switcher, filled once.
async function fillProjects() {
  const select = document.getElementById("project");
  if (select.dataset.filled !== "1") {
    select.dataset.filled = "1";
    select.addEventListener("change", () => navigate(url("/", { project: select.value })));
    const { projects } = await api("/api/v1/projects");
    const names = projects.map((p) => p.name);
    if (!names.includes(project())) names.push(project());
    select.replaceChildren(...names.map((name) => el("option", { value: name }, name)));
  }
  select.value = project();
}

// ---------------------------------------------------------------- Models

function metricColumns(metrics) {
  const columns = [];
  for (const metric of metrics) {
    for (const agg of ["last", "min", "max"]) columns.push({ metric, agg, sort: agg + "(" + metric + ")" });
  }
  return columns;
}

async function modelsView() {
  begin("models");
  const q = params();
  const state = {
    project: project(),
    where: q.get("where") || "",
    sort: q.get("sort") || "name",
    order: q.get("order") || "asc",
    page: Math.max(1, parseInt(q.get("page") || "1", 10) || 1),
    metrics: q.get("metrics") || "",
  };
  const projectsLoaded = fillProjects();
  const metrics = state.metrics.split(",").map((m) => m.trim()).filter(Boolean);
  const here = (changes) => url("/", { ...state, page: state.page > 1 ? state.page : null, ...changes });

  const filter = el("input", { type: "text", id: "filter", name: "where", value: state.where,
    placeholder: "where: status = 'RUNNING' and last(val_loss) < 0.3", "aria-label": "Filter (where language)",
    "aria-describedby": "filter-error", spellcheck: "false" });
  const metricBox = el("input", { type: "text", id: "metrics", value: state.metrics,
    placeholder: "metric columns: loss,val_loss", "aria-label": "Metric columns" });
  const filterError = el("p", { class: "error filter-error", id: "filter-error", role: "alert" });
  const compare = el("button", { type: "button", id: "compare-button", disabled: true }, "Compare selected");
  const form = el("form", { id: "filter-form", onsubmit: (event) => {
    event.preventDefault();
    navigate(here({ where: filter.value.trim(), metrics: metricBox.value.trim(), page: null }));
  } }, filter, metricBox, el("button", { type: "submit" }, "Apply"), filterError);

  const chosen = new Set();
  compare.addEventListener("click", () => {
    navigate(url("/compare", { project: state.project, models: [...chosen].join(","), metric: metrics[0] || null }));
  });

  const columns = [
    { label: "", key: null },
    { label: "Status", sort: "status" },
    { label: "Name", sort: "name" },
    { label: "Datablob", wide: true },
    { label: "Template", wide: true },
    { label: "Created", sort: "created", wide: true },
    { label: "Epochs", sort: "epochs", num: true },
    ...metricColumns(metrics).map((c) => ({ label: c.metric + " " + c.agg, sort: c.sort, num: true, metric: c })),
  ];
  const head = el("tr", {}, columns.map((column) => {
    if (!column.sort) return el("th", { class: column.wide ? "wide" : null, scope: "col" }, column.label);
    const active = state.sort === column.sort;
    const next = active && state.order === "asc" ? "desc" : "asc";
    return el("th", { scope: "col", class: [column.num ? "num" : "", column.wide ? "wide" : ""].join(" ").trim() || null,
      "aria-sort": active ? (state.order === "asc" ? "ascending" : "descending") : "none" },
      el("button", { type: "button", class: "sort", "data-sort": column.sort,
        onclick: () => navigate(here({ sort: column.sort, order: next, page: null })) }, column.label));
  }));
  const body = el("tbody");
  const table = el("table", { id: "models" }, el("thead", {}, head), body);
  const pager = el("div", { class: "pager", id: "pager" });
  main().replaceChildren(
    el("div", { class: "toolbar" }, form, compare),
    el("div", { class: "scroll" }, table),
    pager,
  );

  let data;
  try {
    data = await api(url(projectApi("/models"), {
      sort: state.sort, order: state.order, where: state.where, metrics: state.metrics,
      offset: (state.page - 1) * PAGE_SIZE, limit: PAGE_SIZE,
    }));
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.message.startsWith("project:")) {
      body.append(el("tr", {}, el("td", { colspan: columns.length, class: "muted" }, "No models in project " + state.project + " yet.")));
    } else {
      filterError.textContent = error.message;
    }
    await projectsLoaded.catch(() => {});
    done();
    return;
  }
  for (const model of data.models) {
    const link = url("/model/" + encodeURIComponent(model.name), { project: state.project });
    const box = el("input", { type: "checkbox", "aria-label": "Pick " + model.name + " for compare", "data-model": model.name,
      onchange: (event) => {
        if (event.target.checked) chosen.add(model.name); else chosen.delete(model.name);
        compare.disabled = chosen.size === 0;
      } });
    const cells = [
      el("td", {}, box),
      el("td", {}, statusBadge(model.status)),
      el("td", { class: "name" }, el("a", { href: link, "data-nav": true }, model.name)),
      el("td", { class: "wide" }, model.datablob),
      el("td", { class: "wide" }, model.template),
      el("td", { class: "wide" }, time(model.created_at)),
      el("td", { class: "num" }, model.epoch_count),
      ...metricColumns(metrics).map((c) => {
        const value = (model.metrics[c.metric] || {})[c.agg];
        const exact = value === null || value === undefined ? "" : String(num(value));
        return el("td", { class: "num", title: exact }, value === null || value === undefined ? "" : fmt(num(value)));
      }),
    ];
    body.append(el("tr", { tabindex: "0", "data-href": link, onkeydown: (event) => {
      const row = event.currentTarget;
      if (event.key === "Enter" && event.target === row) navigate(link);
      else if (event.key === " " && event.target === row) { event.preventDefault(); box.click(); }
      else if (event.key === "ArrowDown" && row.nextElementSibling) { event.preventDefault(); row.nextElementSibling.focus(); }
      else if (event.key === "ArrowUp" && row.previousElementSibling) { event.preventDefault(); row.previousElementSibling.focus(); }
    } }, cells));
  }
  if (data.models.length === 0) {
    body.append(el("tr", {}, el("td", { colspan: columns.length, class: "muted" }, "No models match.")));
  }
  const first = data.total === 0 ? 0 : (state.page - 1) * PAGE_SIZE + 1;
  const last = (state.page - 1) * PAGE_SIZE + data.models.length;
  const pages = Math.max(1, Math.ceil(data.total / PAGE_SIZE));
  pager.append(
    el("button", { type: "button", id: "prev-page", disabled: state.page <= 1, onclick: () => navigate(here({ page: state.page - 1 })) }, "← Previous"),
    el("span", { id: "page-info" }, `${first}–${last} of ${data.total} (page ${state.page} of ${pages})`),
    el("button", { type: "button", id: "next-page", disabled: data.next_offset === null, onclick: () => navigate(here({ page: state.page + 1 })) }, "Next →"),
  );
  await projectsLoaded.catch(() => {});
  done();
}

// ----------------------------------------------------------------- Charts

function chartSize(container) {
  const width = Math.max(260, (container ? container.clientWidth : 600) - 16);
  return { width, height: Math.round(Math.min(300, Math.max(200, width * 0.45))) };
}

// uPlot draws null as a gap; NaN and infinities become gaps, and on a log
// scale so do values <= 0.
function plotValues(values, log) {
  return values.map((v) => (Number.isFinite(v) && (!log || v > 0) ? v : null));
}

function exactValue(value) {
  return value === null || value === undefined ? "—" : String(value);
}

// One chart: x = epochs, one line per entry of `lines` ({label, epochs, values}).
function drawChart(container, lines, log) {
  const tables = lines.map((line) => [line.epochs, plotValues(line.values, log)]);
  const data = lines.length === 1 ? tables[0] : uPlot.join(tables);
  const options = {
    ...chartSize(container),
    scales: { x: { time: false }, y: log ? { distr: 3 } : {} },
    axes: [{ label: "epoch" }, {}],
    cursor: { drag: { x: true, y: false } },
    series: [
      { label: "epoch", value: (u, v) => (v === null || v === undefined ? "—" : v) },
      ...lines.map((line, i) => ({ label: line.label, stroke: COLORS[i % COLORS.length], width: 1.5,
        spanGaps: false, points: { show: false }, value: (u, v) => exactValue(v) })),
    ],
  };
  const chart = new uPlot(options, data, container);
  charts.push(chart);
  return chart;
}

function curvesFrom(response) {
  const series = {};
  for (const curve of response.curves) {
    (series[curve.metric] = series[curve.metric] || {})[curve.model] = {
      epochs: curve.epochs, values: curve.values.map(num), total: curve.total_points, downsampled: curve.downsampled,
    };
  }
  return series;
}

// ------------------------------------------------------------------ Model

function flatten(value, prefix, into) {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length === 0 && prefix) into[prefix] = "{}";
    for (const key of keys) flatten(value[key], prefix ? prefix + "." + key : key, into);
  } else if (prefix) {
    into[prefix] = typeof value === "string" ? value : JSON.stringify(value);
  }
  return into;
}

function kvTable(object, id) {
  const rows = Object.entries(object);
  if (rows.length === 0) return el("p", { class: "muted" }, "none");
  return el("table", { class: "kv", id }, el("tbody", {}, rows.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, v)))));
}

function card(title, ...content) {
  return el("section", { class: "card" }, el("h2", {}, title), ...content);
}

// A datablob or template of the model: its hyperparameters, tags,
// description and times (ids prefixed with `id`).
function componentCard(title, component, id) {
  return card(title + " " + component.name,
    component.deleted ? el("p", {}, el("span", { class: "status status-FAILED", id: id + "-deleted" }, "deleted")) : null,
    component.description ? el("p", { id: id + "-description" }, component.description) : null,
    el("h3", {}, "Hyperparameters"),
    kvTable(flatten(component.hyperparams, "", {}), id + "-hyperparams"),
    el("h3", {}, "Tags"),
    kvTable(component.tags, id + "-tags"),
    kvTable({ group: component.group_name, created: time(component.created_at), "last modified": time(component.last_modified_at) }, id + "-facts"));
}

async function modelView(name) {
  begin("model");
  fillProjects().catch(() => {});
  const base = projectApi("/models/" + encodeURIComponent(name));
  const exact = params().get("exact") === "1";
  const [model, curves] = await Promise.all([
    api(base),
    api(url(base + "/metrics", exact ? { exact: 1 } : { points: 2000 })),
  ]);
  const series = curvesFrom(curves);
  window.mlmeta.series = series;
  const badge = el("span", { id: "model-status" }, statusBadge(model.status));
  const logToggle = el("input", { type: "checkbox", id: "log-scale" });
  const chartBox = el("div", { class: "charts", id: "charts" });
  const summaries = Object.fromEntries(model.metrics.map((m) => [m.name,
    `last ${exactValue(num(m.last && m.last.value))} @${m.last ? m.last.epoch : ""}` +
    (m.min ? `, min ${exactValue(num(m.min.value))} @${m.min.epoch}` : "") +
    (m.max ? `, max ${exactValue(num(m.max.value))} @${m.max.epoch}` : "") +
    `, ${m.count} epochs` + (m.nan_count ? `, ${m.nan_count} NaN` : "")]));
  const curvesHeading = el("h2", {}, "Curves ",
    el("label", { class: "legend-note" }, logToggle, " log scale"), " ",
    exact ? el("a", { class: "legend-note", href: url(location.pathname, { project: project() }), "data-nav": true }, "downsampled")
      : el("a", { class: "legend-note", href: url(location.pathname, { project: project(), exact: 1 }), "data-nav": true }, "every point"));
  main().replaceChildren(...[
    el("p", {}, el("a", { href: url("/", { project: project() }), "data-nav": true }, "← Models")),
    el("h1", {}, model.name, " ", badge),
    model.description ? el("p", { id: "description" }, model.description) : null,
    curvesHeading,
    chartBox,
    el("h2", {}, "Details"),
    el("div", { class: "grid" },
      card("Model", kvTable({
        datablob: model.datablob, template: model.template, class: model.model_class_name,
        created: time(model.created_at), "last modified": time(model.last_modified_at), epochs: model.epoch_count,
        started: time(model.run.started_at), ended: time(model.run.ended_at),
        "last heartbeat": time(model.run.last_heartbeat_at),
      }, "model-facts")),
      card("Params", kvTable(flatten(model.params, "", {}), "params")),
      componentCard("Datablob", model.datablob_detail, "datablob"),
      componentCard("Template", model.template_detail, "template"),
      card("Tags", kvTable(model.tags, "tags")),
      card("Metrics", kvTable(summaries, "metric-summaries")),
      card("Artifacts", model.artifacts.length === 0 ? el("p", { class: "muted" }, "none") :
        el("table", { id: "artifacts" }, el("tbody", {}, model.artifacts.map((a) => el("tr", {},
          el("td", {}, a.name), el("td", {}, a.uri), el("td", { class: "num" }, a.size_bytes === null ? "" : a.size_bytes)))))),
      card("Status history", model.status_history.length === 0 ? el("p", { class: "muted" }, "none") :
        el("table", { id: "status-history" }, el("tbody", {}, model.status_history.map((c) => el("tr", {},
          el("td", {}, time(c.changed_at)), el("td", {}, c.from, " → ", c.to), el("td", {}, c.cause)))))),
    ),
  ].filter(Boolean));
  const byMetric = new Map();
  const draw = () => {
    const started = performance.now();
    for (const chart of charts) chart.destroy();
    charts = [];
    byMetric.clear();
    chartBox.replaceChildren();
    for (const metric of Object.keys(series).sort()) {
      const curve = series[metric][name];
      const holder = el("div", { class: "chart-area" });
      const note = curve.downsampled ? ` (${curve.epochs.length} of ${curve.total} points; hover shows exact values)` : "";
      chartBox.append(el("div", { class: "chart", "data-metric": metric }, el("h3", {}, metric, el("span", { class: "legend-note" }, note)), holder));
      byMetric.set(metric, drawChart(holder, [{ label: metric, epochs: curve.epochs, values: curve.values }], logToggle.checked));
    }
    if (Object.keys(series).length === 0) chartBox.append(el("p", { class: "muted" }, "No epochs yet."));
    window.mlmeta.drawMs = performance.now() - started;
  };
  logToggle.addEventListener("change", draw);
  draw();
  if (model.status === "RUNNING") follow(base, name, series, byMetric, draw, badge);
  done();
}

// Live updates while the run is RUNNING: each new epoch is appended.
function follow(base, name, series, byMetric, redraw, badge) {
  live = new EventSource(base + "/events");
  live.addEventListener("epoch", (event) => {
    const epoch = JSON.parse(event.data);
    let added = false;
    for (const [metric, raw] of Object.entries(epoch.metrics)) {
      const curve = ((series[metric] = series[metric] || {})[name] =
        series[metric][name] || { epochs: [], values: [], total: 0, downsampled: false });
      if (curve.epochs.length && curve.epochs[curve.epochs.length - 1] >= epoch.epoch) continue;
      curve.epochs.push(epoch.epoch);
      curve.values.push(num(raw));
      curve.total += 1;
      const chart = byMetric.get(metric);
      if (chart) chart.setData([curve.epochs, plotValues(curve.values, document.getElementById("log-scale").checked)]);
      else added = true;
    }
    if (added) redraw();
    window.mlmeta.liveEpoch = epoch.epoch;
  });
  live.addEventListener("status", (event) => {
    const { status } = JSON.parse(event.data);
    badge.replaceChildren(statusBadge(status));
    if (status !== "RUNNING" && live) { live.close(); live = null; }
  });
}

// ---------------------------------------------------------------- Compare

async function compareView() {
  begin("compare");
  fillProjects().catch(() => {});
  const q = params();
  const names = (q.get("models") || "").split(",").map((n) => n.trim()).filter(Boolean);
  if (names.length === 0) {
    main().replaceChildren(el("p", {}, "Pick models in the ", el("a", { href: "/", "data-nav": true }, "table"), " to compare them."));
    done();
    return;
  }
  const wanted = q.get("metric") || "";
  const exact = q.get("exact") === "1";
  const [curves, ...models] = await Promise.all([
    api(url(projectApi("/curves"), { models: names.join(","), metrics: wanted, ...(exact ? { exact: 1 } : { points: 2000 }) })),
    ...names.map((name) => api(projectApi("/models/" + encodeURIComponent(name)))),
  ]);
  const series = curvesFrom(curves);
  window.mlmeta.series = series;
  const metrics = Object.keys(series).sort();
  const metric = wanted || metrics[0] || "";
  const select = el("select", { id: "metric", "aria-label": "Metric",
    onchange: () => navigate(url("/compare", { project: project(), models: names.join(","), metric: select.value })) },
    metrics.map((m) => el("option", { value: m, selected: m === metric }, m)));
  const holder = el("div", { class: "chart-area" });
  main().replaceChildren(
    el("p", {}, el("a", { href: url("/", { project: project() }), "data-nav": true }, "← Models")),
    el("h1", {}, "Compare ", names.length, " models"),
    el("div", { class: "toolbar" }, el("label", {}, "Metric ", select)),
    el("div", { class: "chart", id: "compare-chart", "data-metric": metric }, holder),
    el("h2", {}, "Params and hyperparameters"),
    el("div", { class: "scroll" }, sideBySide(models)),
  );
  const started = performance.now();
  const lines = names.filter((n) => series[metric] && series[metric][n])
    .map((n) => ({ label: n, epochs: series[metric][n].epochs, values: series[metric][n].values }));
  if (lines.length) drawChart(holder, lines, false);
  else holder.append(el("p", { class: "muted" }, "None of these models has " + (metric || "any metric") + "."));
  window.mlmeta.drawMs = performance.now() - started;
  done();
}

// Params and hyperparameters of several models, one column each; rows
// whose values differ are highlighted.
function sideBySide(models) {
  const flat = models.map((m) => ({
    status: m.status, epochs: String(m.epoch_count), datablob: m.datablob, template: m.template,
    ...flatten(m.params, "params", {}),
    ...flatten(m.datablob_detail.hyperparams, "datablob", {}),
    ...flatten(m.template_detail.hyperparams, "template", {}),
  }));
  const keys = [...new Set(flat.flatMap((f) => Object.keys(f)))];
  const fixed = ["status", "epochs", "datablob", "template"];
  keys.sort((a, b) => (fixed.indexOf(a) + 1 || 99) - (fixed.indexOf(b) + 1 || 99) || a.localeCompare(b));
  return el("table", { id: "compare-table" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, ""), models.map((m) => el("th", { scope: "col" }, m.name)))),
    el("tbody", {}, keys.map((key) => {
      const values = flat.map((f) => (key in f ? f[key] : ""));
      const differs = new Set(values).size > 1;
      return el("tr", { class: differs ? "differs" : null, "data-key": key }, el("td", {}, key), values.map((v) => el("td", {}, v)));
    })));
}

route();
