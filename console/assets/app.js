// kiln's function console: one page that routes on its path. The overview
// is one call to /ui/api/overview; a function's page polls
// /ui/api/functions/<name>, follows /system/logs and calls the function
// through /function/<name>. Numbers the page shows are also in data-*
// attributes, for tests and tools.
'use strict';

const main = document.getElementById('main');

// h builds an element: h('td', {class: 'num'}, '12', child...).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

async function getJSON(url) {
  const r = await fetch(url, { headers: { Accept: 'application/json' } });
  if (!r.ok) throw new Error(url + ': ' + r.status + ' ' + (await r.text()).trim());
  return r.json();
}

const fmt = {
  ms: (v) => (v ? (v < 10 ? v.toFixed(1) : Math.round(v)) + ' ms' : '–'),
  pct: (v) => (v ? (100 * v).toFixed(1) + ' %' : '0 %'),
  bytes(n) {
    if (!n) return '–';
    const u = ['B', 'kB', 'MB', 'GB'];
    let i = 0;
    while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
    return (i ? n.toFixed(1) : n) + ' ' + u[i];
  },
  // Go's durations are nanoseconds.
  dur: (ns) => (ns >= 1e9 ? (ns / 1e9).toFixed(2) + ' s' : Math.round(ns / 1e6) + ' ms'),
  ago(t) {
    if (!t) return '–';
    const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
    if (s < 60) return Math.round(s) + ' s ago';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    return new Date(t).toLocaleString();
  },
  digest: (d) => (d ? d.replace(/^sha256:/, '').slice(0, 12) : '–'),
  // ref shortens NAME@sha256:HEX to NAME@HEX's first 12.
  ref(r) {
    const [name, digest] = r.split('@');
    return digest ? name + '@' + fmt.digest(digest) : r;
  },
};

function statusBadge(s) {
  return h('span', { class: 'status ' + s.replace(/\s+/g, '-') }, s);
}

// ---- build events (kiln dev): one stream for every page ----

const buildListeners = new Set();
const buildEvents = [];
function followBuilds() {
  const es = new EventSource('/ui/api/builds');
  es.onmessage = (m) => {
    const e = JSON.parse(m.data);
    buildEvents.push(e);
    if (buildEvents.length > 200) buildEvents.shift();
    const live = document.getElementById('builds-live');
    live.textContent = e.function + ': ' + e.kind + (e.error ? ' (' + e.error.split('\n')[0] + ')' : '') + ', ' + new Date(e.at).toLocaleTimeString();
    live.dataset.kind = e.kind;
    for (const f of buildListeners) f(e);
  };
  // The events before it are the past: tests wait for it.
  es.addEventListener('following', () => { document.body.dataset.builds = 'following'; });
}

function buildItem(e) {
  return h('li', { 'data-kind': e.kind, 'data-function': e.function },
    h('span', { class: 'muted' }, new Date(e.at).toLocaleTimeString()), ' ',
    h('a', { href: '/ui/function/' + encodeURIComponent(e.function) }, e.function), ' ',
    statusBadge(e.kind),
    e.build ? ' ' + fmt.dur(e.build.took) : '',
    e.error ? h('div', { class: 'error' }, e.error) : null);
}

// ---- overview ----

async function overview() {
  main.replaceChildren(h('h1', {}, 'Functions'), h('p', { class: 'muted' }, 'Loading…'));
  const tbody = h('tbody');
  const table = h('table', { id: 'functions' },
    h('thead', {}, h('tr', {},
      ['Function', 'Status', 'Replicas', 'Image', 'Size', 'Invocations', 'Errors', 'p50', 'p95', 'p99', 'In flight', 'Last build']
        .map((t, i) => h('th', { class: i >= 2 && i !== 3 && i !== 11 ? 'num' : null }, t)))),
    tbody);
  const feed = h('ul', { class: 'feed', id: 'builds' });
  const note = h('p', { class: 'muted' });
  const render = (ov) => {
    tbody.replaceChildren(...ov.functions.map((f) => h('tr', {
      'data-name': f.name, 'data-invocations': f.invocations, 'data-errors': f.errors, 'data-p95': f.p95,
    },
      h('td', {}, h('a', { href: '/ui/function/' + encodeURIComponent(f.name) }, f.name),
        f.namespace !== 'openfaas-fn' ? h('span', { class: 'muted' }, '.' + f.namespace) : null),
      h('td', {}, statusBadge(f.status), f.buildError ? h('span', { class: 'status failed', title: f.buildError }, 'build failed') : null),
      h('td', { class: 'num' }, f.availableReplicas + '/' + f.replicas),
      h('td', { class: 'mono', title: f.image, 'data-digest': f.build ? f.build.digest : null }, fmt.ref(f.image)),
      h('td', { class: 'num' }, f.build ? fmt.bytes(f.build.size) : '–'),
      h('td', { class: 'num' }, f.invocations),
      h('td', { class: 'num' }, f.errors ? f.errors + ' (' + fmt.pct(f.errorRate) + ')' : '0'),
      h('td', { class: 'num' }, fmt.ms(f.p50)),
      h('td', { class: 'num' }, fmt.ms(f.p95)),
      h('td', { class: 'num' }, fmt.ms(f.p99)),
      h('td', { class: 'num' }, f.maxInflight ? f.inFlight + '/' + f.maxInflight : f.inFlight),
      h('td', {}, f.build ? fmt.ago(f.build.at) + ', ' + fmt.dur(f.build.took) + (f.build.rebuilt ? ', ' + f.build.rebuilt + '/' + f.build.layers + ' layers rebuilt' : '') : '–'),
    )));
    note.textContent = ov.functions.length + ' functions';
    main.dataset.functions = ov.functions.length;
  };
  const ov = await getJSON('/ui/api/overview');
  main.replaceChildren(h('h1', {}, 'Functions'), note, table, h('h2', {}, 'Builds'), feed);
  render(ov);
  // First paint done: tests read this.
  main.dataset.rendered = Math.round(performance.now());
  for (const e of buildEvents) feed.prepend(buildItem(e));
  buildListeners.add((e) => feed.prepend(buildItem(e)));
  setInterval(() => getJSON('/ui/api/overview').then(render).catch(() => {}), 3000);
}

// ---- a function ----

function chart(el, title, labels, colors) {
  const opts = {
    title, width: Math.max(el.clientWidth - 20, 300), height: 180,
    series: [{}, ...labels.map((l, i) => ({ label: l, stroke: colors[i], width: 1.5, points: { size: 4 } }))],
    axes: [{}, { size: 50 }],
    scales: { x: { time: true } },
  };
  return new uPlot(opts, [[], ...labels.map(() => [])], el);
}

async function functionPage(name) {
  document.title = name + ' · kiln';
  let d = await getJSON('/ui/api/functions/' + encodeURIComponent(name));
  const info = h('div', { class: 'kv', id: 'info' });
  const stats = {
    requests: h('div', { class: 'card', id: 'chart-requests' }, h('h3', {}, 'Requests/s and errors/s')),
    latency: h('div', { class: 'card', id: 'chart-latency' }, h('h3', {}, 'Latency (ms)')),
    queued: h('div', { class: 'card', id: 'chart-queued' }, h('h3', {}, 'Time queued, p95 (ms)')),
  };
  const cold = h('tbody');
  const instances = h('tbody');
  const logs = h('pre', { class: 'logs', id: 'logs' });
  const builds = h('ul', { class: 'feed', id: 'builds' });
  const layers = h('div', {}, layerTable(d.build));
  main.replaceChildren(
    h('h1', {}, name),
    info,
    h('h2', {}, 'Over the last 15 minutes'),
    h('div', { class: 'grid' }, stats.requests, stats.latency, stats.queued),
    h('div', { class: 'grid' },
      h('div', {}, h('h2', {}, 'Cold starts'), h('table', { id: 'cold-starts' }, h('thead', {}, h('tr', {}, h('th', {}, 'When'), h('th', { class: 'num' }, 'Start to ready'))), cold)),
      h('div', {}, h('h2', {}, 'Instances'), h('table', { id: 'instances' }, h('thead', {}, h('tr', {}, ['Instance', 'Started', 'Ready', 'Memory', 'CPU', 'CPU time'].map((t, i) => h('th', { class: i >= 3 ? 'num' : null }, t)))), instances))),
    h('h2', {}, 'Image layers'), layers,
    h('h2', {}, 'Invoke'), invokePanel(name),
    h('h2', {}, 'Logs'), logs,
    h('h2', {}, 'Builds'), builds,
  );
  const charts = {
    requests: chart(stats.requests, '', ['requests/s', 'errors/s'], ['#3558d4', '#c62828']),
    latency: chart(stats.latency, '', ['p50', 'p95', 'p99'], ['#1a7f37', '#b35900', '#c62828']),
    queued: chart(stats.queued, '', ['queued p95'], ['#7b3fbf']),
  };
  const update = () => {
    const f = d.function, t = d.telemetry;
    info.replaceChildren(
      h('span', { class: 'muted' }, 'Status'), h('span', {}, statusBadge(f.availableReplicas === 0 ? 'not ready' : f.availableReplicas < f.replicas ? 'degraded' : 'ready')),
      h('span', { class: 'muted' }, 'Replicas'), h('span', { id: 'replicas' }, f.availableReplicas + '/' + f.replicas),
      h('span', { class: 'muted' }, 'Image'), h('span', { class: 'mono', id: 'image' }, f.image),
      h('span', { class: 'muted' }, 'Invocations'), h('span', { id: 'invocations' }, t ? t.invocations : f.invocationCount),
      h('span', { class: 'muted' }, 'Errors'), h('span', {}, t ? t.errors : '–'),
      h('span', { class: 'muted' }, 'In flight'), h('span', { id: 'inflight' }, t ? t.inFlight + (t.maxInflight ? ' of max_inflight ' + t.maxInflight : '') + (t.queued ? ', ' + t.queued + ' queued' : '') : '–'),
      h('span', { class: 'muted' }, 'Last build'), h('span', {}, d.build ? fmt.ago(d.build.at) + ' in ' + fmt.dur(d.build.took) : 'not built by kiln'),
    );
    const series = (t && t.series) || [];
    const x = series.map((b) => b.start / 1000);
    const col = (k, scale) => series.map((b) => (b.count || k === 'count' || k === 'errors' ? (b[k] || 0) * scale : null));
    charts.requests.setData([x, col('count', 1 / 5), col('errors', 1 / 5)]);
    charts.latency.setData([x, col('p50', 1), col('p95', 1), col('p99', 1)]);
    charts.queued.setData([x, col('queuedP95', 1)]);
    const sum = (k) => series.reduce((a, b) => a + (b[k] || 0), 0);
    Object.assign(stats.requests.dataset, { requests: sum('count'), errors: sum('errors'), buckets: series.length });
    stats.latency.dataset.p95Max = Math.max(0, ...series.map((b) => b.p95 || 0));
    stats.queued.dataset.queuedMax = Math.max(0, ...series.map((b) => b.queuedP95 || 0));
    cold.replaceChildren(...((t && t.coldStarts) || []).slice().reverse().map((c) =>
      h('tr', {}, h('td', {}, new Date(c.at).toLocaleTimeString()), h('td', { class: 'num' }, fmt.ms(c.ms)))));
    instances.replaceChildren(...((t && t.instances) || []).map((i) =>
      h('tr', { 'data-rss': i.rssBytes }, h('td', { class: 'mono' }, i.id), h('td', {}, fmt.ago(i.started)), h('td', {}, i.ready ? 'yes' : 'no'),
        h('td', { class: 'num' }, fmt.bytes(i.rssBytes)), h('td', { class: 'num' }, (i.cpuPercent || 0).toFixed(1) + ' %'),
        h('td', { class: 'num' }, (i.cpuSeconds || 0).toFixed(2) + ' s'))));
  };
  update();
  followLogs(name, logs);
  for (const e of buildEvents) if (e.function === name) builds.prepend(buildItem(e));
  buildListeners.add(async (e) => {
    if (e.function !== name) return;
    builds.prepend(buildItem(e));
    if (e.kind !== 'live' || document.body.dataset.builds !== 'following') return;
    // A new image: new layers.
    d = await getJSON('/ui/api/functions/' + encodeURIComponent(name));
    layers.replaceChildren(layerTable(d.build));
    update();
  });
  setInterval(async () => {
    try { d = await getJSON('/ui/api/functions/' + encodeURIComponent(name)); update(); } catch { /* the next poll retries */ }
  }, 2000);
}

function layerTable(build) {
  if (!build) return h('p', { class: 'muted' }, 'This image was not built by this kiln.');
  return h('table', { id: 'layers' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Layer'), h('th', {}, 'Digest'), h('th', { class: 'num' }, 'Size'), h('th', {}, 'Last build'), h('th', { class: 'num' }, 'Took'))),
    h('tbody', {}, build.layers.map((l) => h('tr', { 'data-rebuilt': String(l.rebuilt) },
      h('td', {}, l.name || h('span', { class: 'muted' }, 'base')),
      h('td', { class: 'mono' }, fmt.digest(l.digest)),
      h('td', { class: 'num' }, fmt.bytes(l.size)),
      h('td', {}, l.rebuilt ? h('span', { class: 'rebuilt' }, 'rebuilt') : h('span', { class: 'muted' }, 'cached')),
      h('td', { class: 'num' }, l.took ? fmt.dur(l.took) : '–')))));
}

// followLogs streams /system/logs (newline-delimited JSON) into pre.
async function followLogs(name, pre) {
  const add = (l) => {
    pre.append(new Date(l.timestamp).toLocaleTimeString() + ' ' + l.instance.slice(-8) + ' | ' + l.text + '\n');
    if (pre.childNodes.length > 1000) pre.firstChild.remove();
    pre.scrollTop = pre.scrollHeight;
  };
  for (;;) {
    try {
      const r = await fetch('/system/logs?follow=true&tail=200&name=' + encodeURIComponent(name));
      if (!r.ok) throw new Error(r.status);
      pre.replaceChildren();
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line.trim()) add(JSON.parse(line));
        }
      }
    } catch { /* the gateway restarted, or the function is gone: retry */ }
    await new Promise((res) => setTimeout(res, 2000));
  }
}

function invokePanel(name) {
  const method = h('select', { name: 'method' }, ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].map((m) => h('option', {}, m)));
  const path = h('input', { name: 'path', value: '/', placeholder: '/path?query' });
  const headers = h('textarea', { name: 'headers', rows: 2, placeholder: 'Content-Type: application/json' });
  const body = h('textarea', { name: 'body', rows: 4 });
  const answer = h('div', { class: 'answer', id: 'answer' });
  const form = h('form', { class: 'invoke', id: 'invoke' },
    h('label', {}, 'Method'), method,
    h('label', {}, 'Path'), h('div', {}, h('span', { class: 'mono muted' }, '/function/' + name), path),
    h('label', {}, 'Headers'), headers,
    h('label', {}, 'Body'), body,
    h('button', { type: 'submit' }, 'Invoke'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const hdrs = new Headers();
    for (const line of headers.value.split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) hdrs.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
    }
    const p = path.value.startsWith('/') ? path.value : '/' + path.value;
    const opts = { method: method.value, headers: hdrs };
    if (!['GET', 'HEAD'].includes(method.value) && body.value) opts.body = body.value;
    answer.replaceChildren(h('span', { class: 'muted' }, 'Calling…'));
    const start = performance.now();
    try {
      const r = await fetch('/function/' + encodeURIComponent(name) + p, opts);
      const text = await r.text();
      const ms = performance.now() - start;
      answer.dataset.status = r.status;
      answer.dataset.ms = ms.toFixed(1);
      answer.replaceChildren(
        h('div', {}, h('strong', { id: 'answer-status' }, r.status + ' ' + r.statusText), h('span', { class: 'muted' }, ' in ' + ms.toFixed(1) + ' ms')),
        h('pre', { id: 'answer-headers' }, [...r.headers].map(([k, v]) => k + ': ' + v).join('\n')),
        h('pre', { id: 'answer-body' }, text));
    } catch (e) {
      answer.replaceChildren(h('div', { class: 'error' }, String(e)));
    }
  });
  return h('div', { class: 'card' }, form, answer);
}

// ---- API docs ----

// docs is served here only when the gateway has no OpenAPI document:
// /ui/docs is otherwise the rendered document.
function docs() {
  document.title = 'API docs · kiln';
  main.replaceChildren(h('h1', {}, 'API docs'),
    h('p', { class: 'muted', id: 'no-docs' }, 'This gateway serves no OpenAPI document (/system/openapi.json).'));
  return Promise.resolve();
}

// ---- routing ----

function route() {
  const p = location.pathname;
  const nav = p.startsWith('/ui/docs') ? 'docs' : 'overview';
  for (const a of document.querySelectorAll('header nav a')) a.classList.toggle('active', a.dataset.nav === nav);
  followBuilds();
  let page;
  if (p.startsWith('/ui/function/')) page = functionPage(decodeURIComponent(p.slice('/ui/function/'.length)));
  else if (p.startsWith('/ui/docs')) page = docs();
  else page = overview();
  page.catch((e) => main.replaceChildren(h('p', { class: 'error', id: 'error' }, e.message)));
}

route();
