// The dashboard page, for both places it runs:
//  - live, served by `hpo dashboard`: it reads api/... with relative URLs (so it works under
//    any prefix) and polls api/changes to redraw when the database moves;
//  - offline, inlined by `hpo report`: window.HPO_REPORT holds the same answers keyed by
//    canonicalKey(), and nothing is fetched (the file must open with the network off).
// Everything shown comes from dashboard/API.md; the page keeps only what the user chose
// (filters, sort, selectors). This file is inlined into a <script> by the report writer, so
// the closing-tag sequence must never appear in it, not even inside a string.
'use strict';

(function () {
  const REPORT = window.HPO_REPORT || null;
  // The token protects the API only; it never goes into links, so hash routes stay shareable.
  const TOKEN = REPORT ? null : new URLSearchParams(location.search).get('token');
  const POLL_MS = 2000;

  const STATE_COLORS = {
    COMPLETED: '#2da44e',
    PRUNED: '#f08c00',
    FAILED: '#d1242f',
    RUNNING: '#1f6feb',
    PAUSED: '#8c959f',
    INTERRUPTED: '#8250df',
    CANCELLED: '#424a53',
    QUEUED: '#b6bec8',
  };
  const STATE_ORDER = ['RUNNING', 'QUEUED', 'COMPLETED', 'PRUNED', 'PAUSED', 'FAILED',
    'INTERRUPTED', 'CANCELLED'];
  // Light to dark; the best end of the colour scale is always the dark one, whatever the
  // direction, so "dark is good" reads the same on every chart.
  const VALUE_COLORS = ['#dbe9f6', '#a6cde4', '#5a9fd0', '#2171b5', '#08306b'];
  const CROSS = 'path://M2,0L10,8L18,0L20,2L12,10L20,18L18,20L10,12L2,20L0,18L8,10L0,2Z';
  const PAUSE = 'path://M0,0H7V20H0ZM12,0H19V20H12Z';

  // ---------------------------------------------------------------------------------------
  // Errors: the end-to-end test reads them from #hpo-status, so every route into the console
  // ends up in one list.
  const errors = [];
  const originalConsoleError = console.error.bind(console);
  console.error = function (...args) {
    errors.push(args.map(describe).join(' '));
    scheduleStatus();
    originalConsoleError(...args);
  };
  window.onerror = function (message, source, line, column, error) {
    errors.push(error ? describe(error) : `${message} (${source}:${line}:${column})`);
    scheduleStatus();
  };
  window.addEventListener('unhandledrejection', (e) => {
    errors.push('unhandled rejection: ' + describe(e.reason));
    scheduleStatus();
  });

  function describe(x) {
    if (x instanceof Error) return x.message || String(x);
    if (typeof x === 'string') return x;
    try {
      return JSON.stringify(x);
    } catch (_) {
      return String(x);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Requests. One key per request, shared by both modes: the report writer stores answers
  // under exactly this string, and the live page builds its URL from it.

  // params: an array of [name, value] pairs (names may repeat, e.g. `where`) or an object
  // whose array values repeat. Null, undefined and '' values are left out.
  function canonicalKey(path, params) {
    let pairs = [];
    if (Array.isArray(params)) {
      pairs = params.slice();
    } else if (params) {
      for (const [k, v] of Object.entries(params)) {
        if (Array.isArray(v)) v.forEach((x) => pairs.push([k, x]));
        else pairs.push([k, v]);
      }
    }
    pairs = pairs.filter(([, v]) => v !== undefined && v !== null && v !== '');
    // Array.prototype.sort is stable, so repeated names keep the order they were given in.
    pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const base = String(path).replace(/^\/+/, '');
    if (!pairs.length) return base;
    return base + '?' + pairs.map(([k, v]) => k + '=' + encodeURIComponent(String(v))).join('&');
  }
  window.hpoCanonicalKey = canonicalKey;

  class NotIncluded extends Error {}
  class Stale extends Error {}
  // A note shown in a panel is not a failure: thrown to end a task without clearing it.
  class Handled extends Error {}

  function api(path, params) {
    const key = canonicalKey(path, params);
    if (REPORT) {
      const data = REPORT.data || {};
      if (!Object.prototype.hasOwnProperty.call(data, key)) {
        return Promise.reject(new NotIncluded(key));
      }
      const answer = data[key];
      // An error answer is exactly {"error": "..."}; a trial's own `error` field is data.
      if (answer && typeof answer === 'object' && typeof answer.error === 'string' &&
          Object.keys(answer).length === 1) {
        return Promise.reject(new Error(`${key}: ${answer.error}`));
      }
      return Promise.resolve(answer);
    }
    const url = TOKEN
      ? key + (key.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(TOKEN)
      : key;
    return fetch(url, {cache: 'no-store'}).then(
      async (r) => {
        let body = null;
        try {
          body = await r.json();
        } catch (_) {
          body = null;
        }
        if (!r.ok) {
          const why = body && body.error ? body.error : r.statusText;
          throw new Error(`${key}: HTTP ${r.status} ${why}`);
        }
        if (body === null || typeof body !== 'object') throw new Error(`${key}: not a JSON object`);
        return body;
      },
      (err) => {
        throw new Error(`${key}: ${describe(err)}`);
      });
  }

  // ---------------------------------------------------------------------------------------
  // Small DOM and formatting helpers.

  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === 'class') e.className = v;
        else if (k === 'text') e.textContent = v;
        else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
        else if (k === 'dataset') Object.assign(e.dataset, v);
        else e.setAttribute(k, v === true ? '' : v);
      }
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({
      '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\'': '&#39;',
    })[c]);
  }

  function fmtNum(v) {
    if (v === null || v === undefined) return '—';
    if (typeof v !== 'number') return typeof v === 'object' ? JSON.stringify(v) : String(v);
    if (!isFinite(v)) return String(v);
    if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
    return String(Number(v.toPrecision(6)));
  }

  function fmtCell(v) {
    if (v === null || v === undefined) return '—';
    if (typeof v === 'number') return fmtNum(v);
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }

  function fmtDur(s) {
    if (s === null || s === undefined || !isFinite(s)) return '—';
    s = Math.max(0, s);
    if (s < 60) return (s < 10 ? s.toFixed(1) : Math.round(s)) + ' s';
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} m ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
    const hr = Math.floor(m / 60);
    if (hr < 48) return `${hr} h ${String(m % 60).padStart(2, '0')} m`;
    return `${Math.floor(hr / 24)} d ${hr % 24} h`;
  }

  function fmtTime(t) {
    if (t === null || t === undefined) return '—';
    const d = new Date(t * 1000);
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
      `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }

  function badge(state) {
    const s = String(state || '?');
    return h('span', {class: 'badge state-' + s.toLowerCase(), text: s});
  }

  function studyHref(name) {
    return '#/study/' + encodeURIComponent(name);
  }
  function trialHref(name, number) {
    return studyHref(name) + '/trial/' + encodeURIComponent(number);
  }

  function valueScale(values, direction) {
    let min = Infinity;
    let max = -Infinity;
    for (const v of values) {
      if (typeof v === 'number' && isFinite(v)) {
        if (v < min) min = v;
        if (v > max) max = v;
      }
    }
    if (min === Infinity) {
      min = 0;
      max = 1;
    }
    if (min === max) {
      min -= 0.5;
      max += 0.5;
    }
    const colors = direction === 'minimize' ? VALUE_COLORS.slice().reverse() : VALUE_COLORS;
    return {min, max, colors};
  }

  function uniqueSorted(values) {
    const seen = [...new Set(values.filter((v) => v !== null && v !== undefined).map(String))];
    return seen.sort((a, b) => {
      const na = Number(a);
      const nb = Number(b);
      if (!isNaN(na) && !isNaN(nb)) return na - nb;
      return a.localeCompare(b);
    });
  }

  // ---------------------------------------------------------------------------------------
  // Views. A view is a page for one route: a skeleton built once, plus tasks that fetch and
  // draw each panel. A refresh (the database moved) reruns the tasks over the same skeleton,
  // so charts update in place and the user's scroll, zoom and filters stay.

  const mainEl = document.getElementById('main');
  const statusEl = document.getElementById('hpo-status');
  const bannerEl = document.getElementById('banner');
  const connEl = document.getElementById('conn');
  let current = null;
  let generation = 0;

  function newView(route) {
    return {
      gen: ++generation,
      route,
      name: route.view,
      tasks: [],
      pending: 0,
      ready: false,
      charts: [],
      counters: {}, // chart name -> () => {count fields}, read from the options the charts hold
      counts: {},
      // First screen first: the panels on screen draw as soon as their data is in; the others
      // wait (deferred) until that screen has painted, then draw one per macrotask.
      onscreen: new Set(), // tasks of the panels on screen at the first render, until done
      deferred: new Set(), // panels whose first draw waits for the first screen
      queue: [], // waiting draws: {resolve, reject}
      gateOpen: false,
      pumping: false,
      // performance.now() (ms from navigation start) when the first render's on-screen panels
      // had painted, and when every panel was drawn; refreshes leave them as they are.
      timing: {first_screen_ms: null, all_ms: null},
    };
  }

  // Below the fold by more than this, a panel is drawn after the first screen.
  const FOLD_MARGIN_PX = 200;

  // Sorts the view's panels into on screen and deferred, reading every rectangle in one pass
  // (one layout) before anything is drawn.
  function planFirstScreen(v) {
    const vh = window.innerHeight || document.documentElement.clientHeight || 0;
    const rects = v.tasks.map((t) => (t.p ? t.p.el.getBoundingClientRect() : null));
    v.tasks.forEach((t, i) => {
      const r = rects[i];
      if (!r) return;
      if (r.top < vh + FOLD_MARGIN_PX && r.bottom > -FOLD_MARGIN_PX) v.onscreen.add(t);
      else v.deferred.add(t.p);
    });
    if (!v.onscreen.size) firstScreenDone(v);
  }

  // Called once the on-screen panels are drawn: waits for their paint (a frame, then a task;
  // a timer in case frames never come, as in a background tab), then lets the rest draw.
  function firstScreenDone(v) {
    let fired = false;
    const after = () => {
      if (fired) return;
      fired = true;
      setTimeout(() => {
        if (v.timing.first_screen_ms === null) v.timing.first_screen_ms = performance.now();
        v.gateOpen = true;
        if (current === v) writeStatus();
        pump(v);
      }, 0);
    };
    requestAnimationFrame(after);
    setTimeout(after, 100);
  }

  // Resolves when panel p may draw: at once for a panel on screen or one drawn before; for a
  // deferred panel's first draw, in its own macrotask once the first screen has painted.
  function drawTurn(v, p) {
    if (!p || p.shown || !v.deferred.has(p)) {
      if (p) p.shown = true;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      v.queue.push({resolve: () => {
        p.shown = true;
        resolve();
      }, reject});
      pump(v);
    });
  }

  function pump(v) {
    if (!v.gateOpen || v.pumping || !v.queue.length) return;
    v.pumping = true;
    setTimeout(() => {
      v.pumping = false;
      if (current !== v) return;
      const next = v.queue.shift();
      // The panel draws in this task's microtasks; the next one gets a task of its own.
      if (next) next.resolve();
      pump(v);
    }, 0);
  }

  // A view left before its panels drew: their tasks end as stale.
  function abandon(v) {
    for (const q of v.queue.splice(0)) q.reject(new Stale());
  }

  // A panel: title, optional controls, a message line, a body. `focus` links to the large
  // single-panel view used for screenshots.
  function makePanel(v, id, title, opts = {}) {
    const msg = h('div', {class: 'panel-msg', hidden: true});
    const controls = h('div', {class: 'controls'});
    const body = h('div', {class: 'panel-body'});
    const caption = h('div', {class: 'caption'});
    const head = h('div', {class: 'panel-head'}, h('h2', {text: title}), controls);
    if (opts.focusHref) {
      head.append(h('a', {class: 'focus-link', href: opts.focusHref, title: 'show this panel alone',
        text: '⤢'}));
    }
    const el = h('section', {id: 'panel-' + id, class: 'panel' + (opts.wide ? ' wide' : '')},
      head, msg, body, caption);
    const p = {
      id, el, body, controls, msg, caption, chartEl: null, chart: null,
      // A panel whose data is absent or failed hides its chart but keeps its title.
      note(text) {
        msg.hidden = false;
        msg.className = 'panel-msg note';
        msg.textContent = text;
        if (p.chartEl) p.chartEl.hidden = true;
      },
      error(text) {
        msg.hidden = false;
        msg.className = 'panel-msg error';
        msg.textContent = text;
        if (p.chartEl && !p.drawn) p.chartEl.hidden = true;
      },
      clear() {
        msg.hidden = true;
        msg.textContent = '';
        if (p.chartEl && p.chartEl.hidden) {
          p.chartEl.hidden = false;
          // A chart hidden through a window resize measured itself at zero.
          if (p.chart) p.chart.resize();
        }
      },
      drawn: false,
    };
    return p;
  }

  function addChart(v, p, cls) {
    p.chartEl = h('div', {class: 'chart ' + (cls || '')});
    p.body.append(p.chartEl);
    return () => {
      // Created on first draw, when the element is in the page and has its size.
      if (!p.chart) {
        p.chartEl.hidden = false;
        p.chart = echarts.init(p.chartEl, null, {renderer: 'canvas'});
        v.charts.push(p.chart);
      }
      return p.chart;
    };
  }

  // Draws `option` on the panel's chart: whole the first time; later only what changed, with
  // the zoom left as the user set it (dataZoom is not passed again).
  // The series are kept as set (p.series) for the status counts: the series are replaced
  // whole on every draw, so they are what the chart holds, without a getOption() copy.
  // Resolves once drawn: a panel below the fold waits for its turn (drawTurn) first.
  async function draw(v, p, getChart, option) {
    await drawTurn(v, p);
    if (current !== v) throw new Stale();
    const chart = getChart();
    if (!p.drawn) {
      chart.setOption(option, {notMerge: true});
      p.drawn = true;
    } else {
      const o = Object.assign({}, option);
      delete o.dataZoom;
      chart.setOption(o, {replaceMerge: ['series']});
    }
    p.series = option.series || [];
    return chart;
  }

  function seriesLength(p, pred) {
    if (!p.chart || !p.series) return 0;
    const s = p.series.find(pred);
    return s && s.data ? s.data.length : 0;
  }

  function addTask(v, p, fn) {
    const task = {p, fn};
    v.tasks.push(task);
    return task;
  }

  function runTask(v, task, refresh) {
    v.pending++;
    return Promise.resolve()
      .then(() => task.fn(refresh))
      .then(() => {
        if (task.p && current === v) task.p.clear();
      })
      .catch((err) => {
        if (err instanceof Stale || err instanceof Handled || current !== v) return;
        if (err instanceof NotIncluded) {
          if (task.p) task.p.note('Not included in this report.');
          else console.warn('not included in this report: ' + err.message);
          return;
        }
        console.error(describe(err));
        if (task.p) task.p.error(describe(err));
        else showViewError(describe(err));
      })
      .finally(() => {
        v.pending--;
        if (v.onscreen.delete(task) && !v.onscreen.size) firstScreenDone(v);
        if (v.pending === 0 && current === v) {
          v.ready = true;
          if (v.timing.all_ms === null) v.timing.all_ms = performance.now();
        }
        writeStatus();
      });
  }

  function runAll(v, refresh) {
    return Promise.all(v.tasks.map((t) => runTask(v, t, refresh)));
  }

  // Fetch bound to a view: a late answer for a page the user has left is dropped.
  function getter(v) {
    return (path, params) => api(path, params).then((d) => {
      if (current !== v) throw new Stale();
      return d;
    });
  }

  function showViewError(text) {
    const box = mainEl.querySelector('.view-error') || h('div', {class: 'view-error error'});
    box.textContent = text;
    if (!box.parentNode) mainEl.prepend(box);
  }

  // ---------------------------------------------------------------------------------------
  // Routing.

  function safeDecode(s) {
    try {
      return decodeURIComponent(s);
    } catch (_) {
      return s;
    }
  }

  function parseRoute() {
    let path = location.hash.replace(/^#/, '');
    let query = '';
    const q = path.indexOf('?');
    if (q >= 0) {
      query = path.slice(q + 1);
      path = path.slice(0, q);
    }
    const opts = new URLSearchParams(query);
    const parts = path.split('/').filter(Boolean).map(safeDecode);
    if (!parts.length) {
      // A report opens on its study; "#/" still lists studies when the report has them.
      if (REPORT && location.hash.length <= 1) return {view: 'study', study: REPORT.study};
      return {view: 'studies'};
    }
    if (parts[0] === 'agents') return {view: 'agents'};
    if (parts[0] === 'study' && parts.length >= 2) {
      if (parts[2] === 'trial' && parts.length >= 4) {
        return {view: 'trial', study: parts[1], number: Number(parts[3])};
      }
      return {view: 'study', study: parts[1], focus: opts.get('focus') || null};
    }
    return {view: 'unknown'};
  }

  function render() {
    if (current) {
      for (const c of current.charts) c.dispose();
      abandon(current);
    }
    const route = parseRoute();
    const v = newView(route);
    current = v;
    mainEl.replaceChildren();
    document.body.classList.toggle('focus-mode', route.view === 'study' && !!route.focus);
    for (const a of document.querySelectorAll('#nav a')) {
      a.classList.toggle('active', a.dataset.nav === route.view ||
        (a.dataset.nav === 'study' && route.view === 'trial'));
    }
    const build = {studies: viewStudies, study: viewStudy, trial: viewTrial, agents: viewAgents}[
      route.view];
    if (build) {
      build(v, route);
    } else {
      mainEl.append(h('p', {class: 'note', text: 'No such page. '},
        h('a', {href: '#/', text: 'Back to the studies.'})));
    }
    if (!v.tasks.length) {
      v.ready = true;
      v.timing.all_ms = performance.now();
    }
    planFirstScreen(v);
    writeStatus();
    runAll(v, false);
  }

  // ---------------------------------------------------------------------------------------
  // Studies.

  function viewStudies(v) {
    document.title = 'Studies · hpo';
    const p = makePanel(v, 'studies', 'Studies', {wide: true});
    mainEl.append(h('div', {class: 'grid'}, p.el));
    const get = getter(v);
    addTask(v, p, async () => {
      const d = await get('api/studies');
      const rows = d.studies || [];
      v.counts = {rows: rows.length};
      if (!rows.length) {
        p.body.replaceChildren(h('p', {class: 'note', text: 'No studies in this database yet.'}));
        return;
      }
      const head = ['Study', 'Status', 'Objective', 'Trials', 'Best', 'Sampler', 'Scheduler',
        'Elapsed', 'ETA'];
      const table = h('table', {id: 'studies', class: 'data'},
        h('thead', null, h('tr', null, head.map((x) => h('th', {text: x})))),
        h('tbody', null, rows.map((s) => h('tr', {dataset: {study: s.name}},
          h('td', null, h('a', {href: studyHref(s.name), text: s.name})),
          h('td', null, badge(s.status)),
          h('td', {text: `${s.metric || '—'} ${s.direction === 'minimize' ? '↓' : '↑'}`}),
          h('td', null, countsLine(s.counts, s.total)),
          h('td', {class: 'num'}, s.best === null || s.best === undefined ? '—' : [
            h('span', {text: fmtNum(s.best), dataset: {value: String(s.best)}}), ' ',
            s.best_trial !== null && s.best_trial !== undefined
              ? h('a', {href: trialHref(s.name, s.best_trial), text: '#' + s.best_trial}) : null,
          ]),
          h('td', {text: s.sampler || '—'}),
          h('td', {text: s.scheduler || '—'}),
          h('td', {class: 'num', text: fmtDur(s.elapsed_s)}),
          h('td', {class: 'num', text: s.eta_s === null || s.eta_s === undefined ? '—'
            : fmtDur(s.eta_s)}),
        ))));
      p.body.replaceChildren(h('div', {class: 'table-wrap'}, table));
    });
  }

  function countsLine(counts, total) {
    counts = counts || {};
    const parts = STATE_ORDER.filter((s) => counts[s]).map((s) =>
      h('span', {class: 'count', title: s},
        h('i', {class: 'dot', style: `background:${STATE_COLORS[s]}`}), `${counts[s]} ${s.toLowerCase()}`));
    return h('span', {class: 'counts'}, h('b', {text: String(total ?? 0)}), ' ', parts);
  }

  // ---------------------------------------------------------------------------------------
  // Study.

  const PANELS = {
    history: {title: 'Optimization history'},
    importance: {title: 'Parameter importance'},
    leaderboard: {title: 'Leaderboard', wide: true},
    parallel: {title: 'Parallel coordinates', wide: true},
    curves: {title: 'Learning curves'},
    slice: {title: 'Slice'},
    timeline: {title: 'Timeline', wide: true},
  };

  // Survive refreshes and route changes: keyed by study name.
  const leaderboardState = new Map();
  const curvesState = new Map();
  const sliceState = new Map();

  function viewStudy(v, route) {
    const name = route.study;
    document.title = `${name} · hpo`;
    const get = getter(v);
    const focus = route.focus && PANELS[route.focus] ? route.focus : null;
    if (route.focus && !focus) {
      mainEl.append(h('p', {class: 'error', text: `No panel "${route.focus}"; panels are: ` +
        Object.keys(PANELS).join(', ')}));
    }

    const summary = h('div', {id: 'study-summary', class: 'summary'});
    if (focus) {
      mainEl.append(h('p', {class: 'back'}, h('a', {href: studyHref(name), text: '← ' + name})));
    } else {
      mainEl.append(h('h1', null, h('span', {class: 'muted', text: 'Study '}), name), summary);
    }
    const grid = h('div', {class: 'grid' + (focus ? ' focus' : '')});
    mainEl.append(grid);

    // Study information (metric, direction, parameter kinds) is used by several panels; one
    // request, shared.
    let resolveInfo;
    v.info = new Promise((r) => {
      resolveInfo = r;
    });
    addTask(v, null, async () => {
      try {
        const s = await get('api/study', {name});
        v.study = s;
        resolveInfo(s);
        if (!focus) renderSummary(summary, s);
      } catch (e) {
        resolveInfo(null);
        if (e instanceof NotIncluded) {
          summary.replaceChildren(h('span', {class: 'note', text: 'Study summary not included in this report.'}));
          return;
        }
        if (!(e instanceof Stale)) summary.replaceChildren(h('span', {class: 'error', text: describe(e)}));
        throw e;
      }
    });

    const builders = {
      history: panelHistory, importance: panelImportance, leaderboard: panelLeaderboard,
      parallel: panelParallel, curves: panelCurves, slice: panelSlice, timeline: panelTimeline,
    };
    const ids = focus ? [focus] : Object.keys(PANELS);
    for (const id of ids) {
      const p = makePanel(v, id, PANELS[id].title, {
        wide: PANELS[id].wide || !!focus,
        focusHref: focus ? null : `${studyHref(name)}?focus=${id}`,
      });
      grid.append(p.el);
      builders[id](v, p, name, get, !!focus);
    }
    v.counts = {panels: ids.length};
  }

  function renderSummary(el, s) {
    const bits = [
      badge(s.status),
      h('span', null, (s.direction === 'minimize' ? 'minimize ' : 'maximize '), h('b', {text: s.metric || '?'})),
      h('span', {text: `sampler ${s.sampler || '—'}`}),
      h('span', {text: `scheduler ${s.scheduler || 'none'}`}),
      countsLine(s.counts, s.total),
    ];
    if (s.best !== null && s.best !== undefined) {
      bits.push(h('span', null, 'best ', h('b', {text: fmtNum(s.best)}),
        s.best_trial !== null && s.best_trial !== undefined
          ? [' (', h('a', {href: trialHref(s.name, s.best_trial), text: 'trial ' + s.best_trial}), ')']
          : null));
    }
    bits.push(h('span', {text: 'elapsed ' + fmtDur(s.elapsed_s)}));
    if (s.eta_s !== null && s.eta_s !== undefined) bits.push(h('span', {text: 'ETA ' + fmtDur(s.eta_s)}));
    const b = s.budget || {};
    if (b.trials || b.seconds) {
      bits.push(h('span', {text: 'budget ' + [b.trials ? b.trials + ' trials' : null,
        b.seconds ? fmtDur(b.seconds) : null].filter(Boolean).join(', ')}));
    }
    el.replaceChildren(...bits.flatMap((x, i) => (i ? [h('span', {class: 'sep', text: '·'}), x] : [x])));
  }

  function clickToTrial(chart, name, numberOf) {
    chart.on('click', (e) => {
      const n = numberOf(e);
      if (n !== null && n !== undefined && isFinite(n)) location.hash = trialHref(name, n);
    });
  }

  // --- history ---------------------------------------------------------------------------
  function panelHistory(v, p, name, get) {
    const chart = addChart(v, p);
    v.counters.history = () => ({points: seriesLength(p, (s) => s.id === 'trials')});
    addTask(v, p, async () => {
      const d = await get('api/history', {name});
      const first = !p.drawn;
      const pts = (d.points || []).map((x) => [x[0], x[1]]);
      const large = pts.length > 2000;
      const option = {
        animation: false,
        grid: {left: 64, right: 24, top: 36, bottom: 64},
        legend: {top: 4, data: ['trial', 'best so far']},
        tooltip: {
          trigger: 'item',
          formatter: (e) => e.seriesId === 'trials'
            ? `trial #${e.value[0]}<br>${esc(d.metric)}: <b>${esc(fmtNum(e.value[1]))}</b>`
            : `best so far after #${e.value[0]}: <b>${esc(fmtNum(e.value[1]))}</b>`,
        },
        xAxis: {type: 'value', name: 'trial', nameLocation: 'middle', nameGap: 26,
          min: 'dataMin', max: 'dataMax'},
        yAxis: {type: 'value', name: d.metric, scale: true},
        series: [
          {id: 'trials', name: 'trial', type: 'scatter', data: pts, symbolSize: large ? 3 : 7,
            large, largeThreshold: 2000, progressive: 0,
            itemStyle: {color: '#1f6feb', opacity: 0.65}},
          {id: 'best', name: 'best so far', type: 'line', step: 'end', data: d.best || [],
            showSymbol: false, lineStyle: {color: '#d1242f', width: 2},
            itemStyle: {color: '#d1242f'}},
        ],
        dataZoom: [{type: 'inside', xAxisIndex: 0},
          {type: 'slider', xAxisIndex: 0, height: 16, bottom: 8}],
      };
      const c = await draw(v, p, chart, option);
      if (first) clickToTrial(c, name, (e) => (e.seriesId === 'trials' ? e.value[0] : null));
      p.caption.textContent = `${d.completed} completed trials, ${d.direction || ''}` +
        (d.downsampled ? ` — downsampled to ${pts.length} points (best and worst of each bucket)` : '');
    });
  }

  // --- importance ------------------------------------------------------------------------
  function panelImportance(v, p, name, get) {
    const chart = addChart(v, p);
    v.counters.importance = () => ({bars: seriesLength(p, (s) => s.id === 'importance')});
    addTask(v, p, async () => {
      const d = await get('api/importance', {name});
      const ps = d.parameters || [];
      if (!ps.length) {
        // Still drawn (empty) so the count reads 0 from the chart like everywhere else.
        await draw(v, p, chart, {xAxis: {type: 'value'}, yAxis: {type: 'category', data: []},
          series: [{id: 'importance', type: 'bar', data: []}]});
        p.caption.textContent = d.method || '';
        p.note(d.note || 'No importance to show.');
        throw new Handled();
      }
      const option = {
        animation: false,
        grid: {left: 8, right: 48, top: 16, bottom: 28, containLabel: true},
        tooltip: {
          trigger: 'axis', axisPointer: {type: 'shadow'},
          formatter: (items) => {
            const i = items[0].dataIndex;
            const q = ps[i];
            return `${esc(q.name)}<br>importance <b>${esc(fmtNum(q.importance))}</b>` +
              ` ± ${esc(fmtNum(q.stddev))} (stddev)`;
          },
        },
        xAxis: {type: 'value', min: 0, name: 'importance', nameLocation: 'middle', nameGap: 22},
        yAxis: {type: 'category', inverse: true, data: ps.map((q) => q.name),
          axisLabel: {width: 180, overflow: 'truncate'}},
        series: [
          {id: 'importance', type: 'bar', data: ps.map((q) => q.importance), barMaxWidth: 28,
            itemStyle: {color: '#2171b5'}},
          {id: 'stddev', type: 'custom', silent: true, z: 10,
            encode: {x: [1, 2], y: 0},
            data: ps.map((q, i) => [i, Math.max(0, q.importance - (q.stddev || 0)),
              q.importance + (q.stddev || 0), q.importance]),
            renderItem: errorBar},
        ],
      };
      await draw(v, p, chart, option);
      const bits = [d.method];
      if (d.trials_used !== undefined) bits.push(`${d.trials_used} of ${d.trials_completed} completed trials`);
      if (d.main_effects !== undefined && d.main_effects !== null) {
        bits.push(`main effects explain ${(100 * d.main_effects).toFixed(0)}% of the variance`);
      }
      bits.push('whiskers: ± one standard deviation');
      p.caption.textContent = bits.filter(Boolean).join(' · ');
    });
  }

  function errorBar(params, api) {
    const y = api.value(0);
    const lo = api.coord([api.value(1), y]);
    const hi = api.coord([api.value(2), y]);
    const cap = api.size([0, 1])[1] * 0.18;
    const style = {stroke: '#24292f', lineWidth: 1.2};
    return {
      type: 'group',
      children: [
        {type: 'line', shape: {x1: lo[0], y1: lo[1], x2: hi[0], y2: hi[1]}, style},
        {type: 'line', shape: {x1: lo[0], y1: lo[1] - cap, x2: lo[0], y2: lo[1] + cap}, style},
        {type: 'line', shape: {x1: hi[0], y1: hi[1] - cap, x2: hi[0], y2: hi[1] + cap}, style},
        // The value is written past the whisker, where nothing covers it.
        {type: 'text', x: hi[0] + 6, y: hi[1],
          style: {text: fmtNum(Number(api.value(3).toPrecision(3))), fill: '#24292f',
            fontSize: 11, verticalAlign: 'middle'}},
      ],
    };
  }

  // --- leaderboard -----------------------------------------------------------------------
  function panelLeaderboard(v, p, name, get, focus) {
    if (!leaderboardState.has(name)) {
      leaderboardState.set(name, {where: '', top: 100, sort: null, desc: false});
    }
    const st = leaderboardState.get(name);
    const input = h('input', {type: 'text', class: 'where', value: st.where, size: 36,
      placeholder: 'filter: solver.lr=0.01 and optimizer=adam',
      title: 'param=value filters, joined by " and " (or one per line)'});
    const apply = () => {
      st.where = input.value;
      rerun();
    };
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') apply();
    });
    p.controls.append(input, h('button', {type: 'button', text: 'Filter', onclick: apply}));
    if (!REPORT) {
      const top = h('select', {title: 'how many rows'},
        [['100', 100], ['500', 500], ['all', 0]].map(([label, n]) =>
          h('option', {value: String(n), text: 'top ' + label, selected: st.top === n})));
      top.addEventListener('change', () => {
        st.top = Number(top.value);
        rerun();
      });
      p.controls.append(top);
    }
    // Empty, the box keeps a table's room (class pending), so that the panels below are where
    // they will be when the first screen is planned, and nothing jumps when the rows come.
    const wrap = h('div', {class: 'table-wrap pending' + (focus ? ' tall' : '')});
    p.body.append(wrap);
    let last = null;

    const task = addTask(v, p, () => load().finally(() => wrap.classList.remove('pending')));
    async function load() {
      const filters = parseWhere(st.where);
      if (filters.bad.length) {
        p.error('A filter must read param=value: ' + filters.bad.join(', '));
        throw new Handled();
      }
      const params = [['name', name]];
      if (!REPORT) {
        if (st.top !== 100) params.push(['top', st.top]);
        for (const f of filters.list) params.push(['where', f.text]);
      }
      let d;
      if (REPORT) {
        // A report filters in the page, so it reads every row when the file has them.
        d = await get('api/leaderboard', [...params, ['top', 0]]).catch((e) => {
          if (e instanceof NotIncluded) return get('api/leaderboard', params);
          throw e;
        });
      } else {
        d = await get('api/leaderboard', params);
      }
      last = {d, filters};
      await drawTurn(v, p);
      if (current !== v) throw new Stale();
      const warning = table();
      if (warning) {
        p.error(warning);
        throw new Handled();
      }
    }
    function rerun() {
      runTask(v, task, true);
    }

    function table() {
      const {d, filters} = last;
      const columns = d.columns || [];
      const score = typeof d.score === 'string' && columns.includes(d.score)
        ? d.score : columns.find((c) => c !== 'rank' && c !== 'trial');
      let rows = d.rows || [];
      let warning = null;
      if (REPORT && filters.list.length) {
        const unknown = filters.list.filter((f) => !columns.includes(f.name));
        if (unknown.length) warning = 'No such column: ' + unknown.map((f) => f.name).join(', ');
        rows = rows.filter((r) => filters.list.every((f) => matches(r[f.name], f.value)));
      }
      if (st.sort && columns.includes(st.sort)) {
        const k = st.sort;
        const sign = st.desc ? -1 : 1;
        rows = rows.slice().sort((a, b) => compareCells(a[k], b[k], sign));
      }
      const thead = h('thead', null, h('tr', null, columns.map((c) => {
        const arrow = st.sort === c ? (st.desc ? ' ▼' : ' ▲') : '';
        return h('th', {
          text: c + arrow, class: (c === score ? 'score ' : '') + 'sortable', title: 'sort by ' + c,
          dataset: {col: c},
          onclick: () => {
            if (st.sort === c) st.desc = !st.desc;
            else {
              st.sort = c;
              st.desc = false;
            }
            table();
            writeStatus();
          },
        });
      })));
      const tbody = h('tbody', null, rows.map((r) => h('tr', {dataset: {trial: String(r.trial)}},
        columns.map((c) => {
          const val = r[c];
          const cls = [];
          if (c === score) cls.push('score');
          if (typeof val === 'number') cls.push('num');
          const td = h('td', {class: cls.join(' ') || null});
          if (typeof val === 'number') td.dataset.value = String(val);
          if (c === 'trial' && val !== null && val !== undefined) {
            td.append(h('a', {href: trialHref(name, val), text: String(val)}));
          } else if (c === 'state') {
            td.append(badge(val));
          } else if (c === 'duration_s' && typeof val === 'number') {
            td.textContent = fmtDur(val);
          } else {
            td.textContent = fmtCell(val);
          }
          return td;
        }))));
      const t = h('table', {id: 'leaderboard', class: 'data'}, thead, tbody);
      wrap.replaceChildren(t);
      wrap.classList.remove('pending');
      p.caption.textContent = `${rows.length} rows shown; ${d.ranked ?? '?'} ranked of ` +
        `${d.total ?? '?'} trials; ranked on ${score || '?'}` +
        (REPORT && filters.list.length ? ' (filtered here, in the page)' : '');
      v.counts.leaderboard_rows = rows.length;
      return warning;
    }
  }

  // Filters are "param=value" joined by " and " or newlines; the value is what the CLI's
  // --where takes (JSON where it parses, a string otherwise).
  function parseWhere(text) {
    const list = [];
    const bad = [];
    for (const raw of String(text || '').split(/\n|\s+and\s+/i)) {
      const t = raw.trim();
      if (!t) continue;
      const eq = t.indexOf('=');
      if (eq <= 0) {
        bad.push(t);
        continue;
      }
      const name = t.slice(0, eq).trim();
      const rawValue = t.slice(eq + 1).trim();
      let value = rawValue;
      try {
        value = JSON.parse(rawValue);
      } catch (_) {
        value = rawValue;
      }
      list.push({name, value, text: `${name}=${rawValue}`});
    }
    return {list, bad};
  }

  function matches(cell, value) {
    if (cell === undefined) return false;
    if (cell === null || value === null) return cell === value;
    if (typeof cell === 'number') return Number(value) === cell && String(value).trim() !== '';
    if (typeof cell === 'object' || typeof value === 'object') {
      return JSON.stringify(cell) === JSON.stringify(value);
    }
    return String(cell) === String(value);
  }

  function compareCells(a, b, sign) {
    const na = a === null || a === undefined;
    const nb = b === null || b === undefined;
    if (na || nb) return na === nb ? 0 : na ? 1 : -1; // empty cells last, either way
    if (typeof a === 'number' && typeof b === 'number') return sign * (a - b);
    return sign * fmtCell(a).localeCompare(fmtCell(b), undefined, {numeric: true});
  }

  // --- parallel coordinates ----------------------------------------------------------------
  function panelParallel(v, p, name, get) {
    const chart = addChart(v, p, 'tall');
    v.counters.parallel = () => ({lines: seriesLength(p, (s) => s.type === 'parallel')});
    addTask(v, p, async () => {
      const d = await get('api/parallel', {name});
      const info = await v.info;
      const direction = d.direction || (info ? info.direction : 'maximize');
      const metric = d.metric || (info ? info.metric : 'value');
      const params = (d.params || []).map((q) => (typeof q === 'object' ? q : {name: String(q)}));
      const n = params.length;
      const rows = d.rows || [];
      const axes = params.map((q, i) => {
        const col = rows.map((r) => r[i]);
        const ax = {dim: i, name: q.name, nameTextStyle: {fontSize: 11}};
        if (q.kind === 'category' || q.kind === 'bool' || q.categories) {
          ax.type = 'category';
          ax.data = q.categories ? q.categories.map(String) : uniqueSorted(col);
        } else if (q.log && col.every((x) => x === null || x > 0)) {
          ax.type = 'log';
        } else {
          ax.type = 'value';
          ax.scale = true;
        }
        return ax;
      });
      axes.push({dim: n, name: metric, type: 'value', scale: true,
        nameTextStyle: {fontWeight: 'bold'}});
      const data = rows.map((r) => r.slice(0, n + 1).map((c, i) => {
        if (c === null || c === undefined) return '-';
        return i < n && axes[i].type === 'category' ? String(c) : c;
      }));
      const sc = valueScale(rows.map((r) => r[n]), direction);
      const option = {
        animation: false,
        parallel: {left: 48, right: 120, top: 56, bottom: 28,
          parallelAxisDefault: {nameLocation: 'end', nameGap: 14, nameRotate: 0,
            axisLabel: {fontSize: 10}}},
        parallelAxis: axes,
        visualMap: {type: 'continuous', dimension: n, min: sc.min, max: sc.max,
          inRange: {color: sc.colors}, calculable: true, right: 8, top: 'middle',
          itemHeight: 160, text: [metric, ''], precision: 4},
        tooltip: {
          trigger: 'item',
          formatter: (e) => {
            const r = rows[e.dataIndex];
            if (!r) return '';
            return `trial #${r[n + 1]}<br>` + params.map((q, i) =>
              `${esc(q.name)}: ${esc(fmtCell(r[i]))}`).join('<br>') +
              `<br><b>${esc(metric)}: ${esc(fmtNum(r[n]))}</b>`;
          },
        },
        series: [{id: 'lines', type: 'parallel', data, smooth: false,
          lineStyle: {width: 1.2, opacity: 0.55}, emphasis: {lineStyle: {width: 3, opacity: 1}},
          progressive: 0}],
      };
      const c = await draw(v, p, chart, option);
      if (!c.__hpoClick) {
        c.__hpoClick = true;
        clickToTrial(c, name, (e) => (rows[e.dataIndex] ? rows[e.dataIndex][n + 1] : null));
      }
      p.caption.textContent = `${d.shown} of ${d.completed} completed trials` +
        (d.shown < d.completed ? ' (the best 200 and an even sample of the rest)' : '') +
        '; colour by ' + metric + ', darker is better; drag on an axis to filter';
    });
  }

  // --- learning curves ---------------------------------------------------------------------
  function panelCurves(v, p, name, get) {
    const chart = addChart(v, p);
    v.counters.curves = () => ({series: p.chart && p.series
      ? p.series.filter((s) => s.type === 'line').length : 0});
    if (!curvesState.has(name)) curvesState.set(name, {metric: null, defaultMetric: null});
    const st = curvesState.get(name);
    const select = h('select', {title: 'metric'});
    select.addEventListener('change', () => {
      st.metric = select.value;
      runTask(v, task, true);
    });
    p.controls.append(select);
    const legend = h('div', {class: 'state-legend'});
    const task = addTask(v, p, async () => {
      const params = [['name', name]];
      // The default metric is asked for without naming it: that is the key a report stores.
      if (st.metric && st.metric !== st.defaultMetric) params.push(['metric', st.metric]);
      const d = await get('api/curves', params);
      if (!st.defaultMetric && params.length === 1) st.defaultMetric = d.metric;
      if (!st.metric) st.metric = d.metric;
      const metrics = d.metrics && d.metrics.length ? d.metrics : [d.metric];
      select.replaceChildren(...metrics.map((m) => h('option', {value: m, text: m,
        selected: m === d.metric})));
      const trials = d.trials || [];
      const totalPoints = trials.reduce((a, t) => a + (t.points ? t.points.length : 0), 0);
      const series = trials.map((t) => {
        const color = STATE_COLORS[t.state] || '#888';
        const pts = t.points || [];
        const s = {
          id: 't' + t.number, name: '#' + t.number, type: 'line', data: pts,
          showSymbol: totalPoints < 3000, symbol: 'circle', symbolSize: 3,
          sampling: 'lttb', progressive: 0,
          lineStyle: {width: t.state === 'RUNNING' ? 2 : 1.2, color, opacity: 0.8},
          itemStyle: {color},
          emphasis: {focus: 'series', lineStyle: {width: 3}},
        };
        const end = pts[pts.length - 1];
        if (end && (t.state === 'PRUNED' || t.state === 'PAUSED')) {
          s.markPoint = {
            symbol: t.state === 'PRUNED' ? CROSS : PAUSE,
            symbolSize: t.state === 'PRUNED' ? 11 : [8, 11],
            label: {show: false},
            itemStyle: {color: t.state === 'PRUNED' ? '#d1242f' : '#57606a'},
            data: [{coord: [end[0], end[1]], name: t.state}],
          };
        }
        return s;
      });
      const option = {
        animation: false,
        grid: {left: 64, right: 24, top: 24, bottom: 64},
        tooltip: {
          trigger: 'item',
          formatter: (e) => {
            const t = trials[e.seriesIndex];
            if (!t) return '';
            const val = Array.isArray(e.value) ? e.value : e.data && e.data.coord;
            return `trial #${t.number} <b>${t.state}</b>` +
              (val ? `<br>step ${esc(fmtNum(val[0]))}: ${esc(d.metric)} ${esc(fmtNum(val[1]))}` : '');
          },
        },
        xAxis: {type: 'value', name: 'step', nameLocation: 'middle', nameGap: 26, scale: true},
        yAxis: {type: 'value', name: d.metric, scale: true},
        dataZoom: [{type: 'inside', xAxisIndex: 0},
          {type: 'slider', xAxisIndex: 0, height: 16, bottom: 8}],
        series,
      };
      const c = await draw(v, p, chart, option);
      if (!c.__hpoClick) {
        c.__hpoClick = true;
        clickToTrial(c, name, (e) => {
          const m = /^#(\d+)$/.exec(e.seriesName || '');
          return m ? Number(m[1]) : null;
        });
      }
      const present = STATE_ORDER.filter((s) => trials.some((t) => t.state === s));
      legend.replaceChildren(...present.map((s) => h('span', {class: 'count'},
        h('i', {class: 'dot', style: `background:${STATE_COLORS[s]}`}), s.toLowerCase(),
        s === 'PRUNED' ? h('span', {class: 'mark pruned', text: ' ✕ where stopped'}) : null,
        s === 'PAUSED' ? h('span', {class: 'mark paused', text: ' ‖ where paused'}) : null)));
      p.caption.replaceChildren(
        h('span', {text: `${d.shown} of ${d.total} trials: running first, then the best, then ` +
          'pruned and paused ones. Line colour is the trial\'s state: '}), legend);
    });
  }

  // --- slice -------------------------------------------------------------------------------
  const VALUE_AXIS = '(value)';

  function panelSlice(v, p, name, get) {
    const chart = addChart(v, p);
    v.counters.slice = () => ({points: seriesLength(p, (s) => s.id === 'points')});
    if (!sliceState.has(name)) sliceState.set(name, {x: null, y: null, defX: null, defY: null});
    const st = sliceState.get(name);
    const selX = h('select', {title: 'x'});
    const selY = h('select', {title: 'y'});
    const changed = () => {
      st.x = selX.value;
      st.y = selY.value;
      runTask(v, task, true);
    };
    selX.addEventListener('change', changed);
    selY.addEventListener('change', changed);
    p.controls.append(h('label', null, 'x ', selX), h('label', null, ' y ', selY));

    const task = addTask(v, p, async () => {
      // Defaults are asked for without parameters: that is the key a report stores. For
      // "x against the value" the y of the answer is simply not drawn.
      const params = [['name', name]];
      if (st.defX !== null && !(st.x === st.defX && (st.y === st.defY || st.y === VALUE_AXIS))) {
        params.push(['x', st.x]);
        if (st.y !== VALUE_AXIS) params.push(['y', st.y]);
      }
      const d = await get('api/slice', params);
      if (st.defX === null) {
        st.defX = st.x = d.x;
        st.defY = st.y = d.y || VALUE_AXIS;
      }
      const info = await v.info;
      const direction = d.direction || (info ? info.direction : 'maximize');
      const metric = d.metric || (info ? info.metric : 'value');
      const kinds = {};
      for (const q of (info && info.params) || []) kinds[q.name] = q;
      // Parameters come as names or as {name, kind, log} objects; the objects' `log` is used.
      const names = [];
      for (const q of d.params || []) {
        if (q && typeof q === 'object') {
          names.push(q.name);
          kinds[q.name] = Object.assign({}, kinds[q.name], q);
        } else {
          names.push(String(q));
        }
      }
      selX.replaceChildren(...names.map((n) => h('option', {value: n, text: n, selected: n === st.x})));
      selY.replaceChildren(...[VALUE_AXIS, ...names].map((n) =>
        h('option', {value: n, text: n, selected: n === st.y})));

      const twoD = st.y !== VALUE_AXIS && d.y !== null && d.y !== undefined;
      const pts = d.points || [];
      const axis = (param, values, label) => {
        const ax = {name: label, nameLocation: 'middle', nameGap: 28, scale: true};
        if (values.some((x) => typeof x === 'string' || typeof x === 'boolean')) {
          ax.type = 'category';
          ax.data = uniqueSorted(values);
          ax.boundaryGap = true;
        } else if (param && kinds[param] && kinds[param].log && values.every((x) => x > 0)) {
          ax.type = 'log';
        } else {
          ax.type = 'value';
        }
        return ax;
      };
      const cellFor = (ax, x) => (ax.type === 'category' ? String(x) : x);
      const xAxis = axis(d.x, pts.map((q) => q[0]), d.x);
      let yAxis;
      let data;
      if (twoD) {
        yAxis = axis(d.y, pts.map((q) => q[1]), d.y);
        yAxis.nameGap = 48;
        data = pts.map((q) => [cellFor(xAxis, q[0]), cellFor(yAxis, q[1]), q[2], q[3]]);
      } else {
        yAxis = {type: 'value', name: metric, scale: true, nameLocation: 'middle', nameGap: 48};
        data = pts.map((q) => [cellFor(xAxis, q[0]), q[2], q[2], q[3]]);
      }
      const sc = valueScale(pts.map((q) => q[2]), direction);
      const option = {
        animation: false,
        grid: {left: 72, right: 96, top: 24, bottom: 48},
        tooltip: {
          trigger: 'item',
          formatter: (e) => `trial #${e.value[3]}<br>${esc(d.x)}: ${esc(fmtCell(e.value[0]))}` +
            (twoD ? `<br>${esc(d.y)}: ${esc(fmtCell(e.value[1]))}` : '') +
            `<br><b>${esc(metric)}: ${esc(fmtNum(e.value[2]))}</b>`,
        },
        visualMap: {type: 'continuous', dimension: 2, min: sc.min, max: sc.max,
          inRange: {color: sc.colors}, calculable: true, right: 4, top: 'middle', itemHeight: 140,
          text: [metric, ''], precision: 4},
        xAxis, yAxis,
        // Not `large`: large mode draws every point in one colour, and the colour is the
        // point of this chart (the API sends at most 5,000 points).
        series: [{id: 'points', type: 'scatter', data, symbolSize: twoD ? 10 : data.length > 1000 ? 5 : 8,
          progressive: 0, itemStyle: {borderColor: '#57606a', borderWidth: 0.5}}],
      };
      // Axis types change with the selection: the option is replaced, not merged.
      p.drawn = false;
      await draw(v, p, chart, option);
      if (!p.chart.__hpoClick) {
        p.chart.__hpoClick = true;
        clickToTrial(p.chart, name, (e) => e.value && e.value[3]);
      }
      p.caption.textContent = `${d.shown} of ${d.completed} completed trials; ` +
        (twoD ? `colour is ${metric}, darker is better` : `${d.x} against ${metric}`);
    });
  }

  // --- timeline ----------------------------------------------------------------------------
  function panelTimeline(v, p, name, get, focus) {
    const chart = addChart(v, p);
    v.counters.timeline = () => ({bars: seriesLength(p, (s) => s.id === 'bars')});
    addTask(v, p, async () => {
      const d = await get('api/timeline', {name});
      const lanes = d.lanes || [];
      const bars = d.bars || [];
      const height = focus ? null : Math.max(260, 90 + lanes.length * 30) + 'px';
      const t0 = bars.reduce((m, b) => Math.min(m, b.start), Infinity);
      // Plain rows, the colour looked up by renderItem: an {value, itemStyle} object per bar
      // makes ECharts build a model per item, half the cost of drawing 2,000 bars.
      const data = bars.map((b) => [b.lane, b.start * 1000, b.end * 1000]);
      const colors = bars.map((b) => STATE_COLORS[b.state] || '#888');
      const option = {
        animation: false,
        grid: {left: 12, right: 24, top: 16, bottom: 56, containLabel: true},
        tooltip: {
          trigger: 'item',
          formatter: (e) => {
            const b = bars[e.dataIndex];
            if (!b) return '';
            return `trial #${b.number} <b>${b.state}</b><br>${esc(lanes[b.lane] || '')}` +
              `<br>${fmtDur(b.end - b.start)}, from +${fmtDur(b.start - t0)}` +
              `<br>attempt ${b.attempt}${b.attempt > 1 ? ' (ran before)' : ''}`;
          },
        },
        xAxis: {type: 'time', scale: true},
        yAxis: {type: 'category', data: lanes, inverse: true, axisTick: {show: false}},
        dataZoom: [{type: 'inside', xAxisIndex: 0, filterMode: 'weakFilter'},
          {type: 'slider', xAxisIndex: 0, filterMode: 'weakFilter', height: 16, bottom: 8}],
        // Every series here is drawn in one pass (progressive: 0): ECharts' progressive
        // rendering above 3,000 items stalls a headless browser for tens of seconds (the
        // end-to-end test's), and the API caps every answer at a size that draws at once.
        series: [{id: 'bars', type: 'custom', renderItem: timelineBar(colors), progressive: 0,
          encode: {x: [1, 2], y: 0}, itemStyle: {color: '#8c959f'}, data}],
      };
      // The height follows the lanes. A chart made by this draw measures it as it is made; one
      // made before is resized (a second full render), so only when the height changed.
      await drawTurn(v, p);
      const resize = height !== null && p.chartEl.style.height !== height && !!p.chart;
      if (height !== null) p.chartEl.style.height = height;
      if (resize) p.chart.resize();
      const c = await draw(v, p, chart, option);
      if (!c.__hpoClick) {
        c.__hpoClick = true;
        clickToTrial(c, name, (e) => (bars[e.dataIndex] ? bars[e.dataIndex].number : null));
      }
      const present = STATE_ORDER.filter((s) => bars.some((b) => b.state === s));
      p.caption.replaceChildren(
        h('span', {text: `${d.shown} of ${d.total} runs on ${lanes.length} slots` +
          (d.shown < d.total ? ' (the latest)' : '') + '. '}),
        ...present.map((s) => h('span', {class: 'count'},
          h('i', {class: 'dot', style: `background:${STATE_COLORS[s]}`}), s.toLowerCase())));
    });
  }

  function timelineBar(colors) {
    return (params, api) => timelineRect(params, api, colors[params.dataIndex] || '#888');
  }

  function timelineRect(params, api, fill) {
    const lane = api.value(0);
    const start = api.coord([api.value(1), lane]);
    const end = api.coord([api.value(2), lane]);
    const height = api.size([0, 1])[1] * 0.6;
    const rect = echarts.graphic.clipRectByRect(
      {x: start[0], y: start[1] - height / 2, width: Math.max(end[0] - start[0], 1.5), height},
      {x: params.coordSys.x, y: params.coordSys.y, width: params.coordSys.width,
        height: params.coordSys.height});
    return rect && {
      type: 'rect', transition: ['shape'], shape: rect,
      style: {fill, stroke: '#ffffff', lineWidth: 0.5},
    };
  }

  // ---------------------------------------------------------------------------------------
  // Trial.

  function viewTrial(v, route) {
    const name = route.study;
    const number = route.number;
    document.title = `#${number} · ${name} · hpo`;
    const get = getter(v);
    const title = h('h1', null, h('a', {href: studyHref(name), text: name}), ' / trial #' + number);
    const nav = h('p', {class: 'trial-nav'},
      number > 0 ? h('a', {href: trialHref(name, number - 1), text: '← #' + (number - 1)}) : null,
      ' ', h('a', {href: trialHref(name, number + 1), text: '#' + (number + 1) + ' →'}));
    const facts = h('div', {id: 'trial-facts', class: 'facts'});
    mainEl.append(title, nav, facts);
    const grid = h('div', {class: 'grid'});
    mainEl.append(grid);
    const pm = makePanel(v, 'metrics', 'Metrics', {wide: true});
    const pp = makePanel(v, 'params', 'Parameters');
    const pc = makePanel(v, 'config', 'Config');
    const pe = makePanel(v, 'events', 'Events');
    const pl = makePanel(v, 'log', 'Log tail');
    grid.append(pm.el, pp.el, pc.el, pe.el, pl.el);
    const metricGrid = h('div', {class: 'metric-grid'});
    pm.body.append(metricGrid);
    const metricCharts = new Map();
    v.counts = {metric_charts: 0, events: 0, params: 0};

    addTask(v, pm, async () => {
      let t;
      try {
        t = await get('api/trial', {name, number});
      } catch (e) {
        // Nothing to show in the other panels: keep only the one that says why.
        if (!pp.drawn) for (const x of [pp, pc, pe, pl]) x.el.hidden = true;
        facts.hidden = true;
        throw e;
      }
      for (const x of [pp, pc, pe, pl]) {
        x.el.hidden = false;
        x.drawn = true;
      }
      facts.hidden = false;
      document.title = `#${t.number} ${t.state} · ${name} · hpo`;
      title.replaceChildren(h('a', {href: studyHref(name), text: name}), ' / trial #' + t.number,
        ' ', badge(t.state));
      const dur = t.started && (t.finished || null) ? t.finished - t.started : null;
      const kv = [
        ['state', badge(t.state)],
        ['value', h('b', {text: fmtNum(t.value), dataset: {value: t.value === null ? '' : String(t.value)}})],
        ['attempt', String(t.attempt ?? '—')],
        ['failures', String(t.failures ?? 0)],
        ['interruptions', String(t.interruptions ?? 0)],
        ['agent', t.agent || '—'],
        ['host', t.host || '—'],
        ['queued', fmtTime(t.queued)],
        ['started', fmtTime(t.started)],
        ['finished', fmtTime(t.finished)],
        ['duration', fmtDur(dur)],
      ];
      if (t.lineage && t.lineage.length) {
        kv.push(['lineage', h('span', null, t.lineage.flatMap((a, i) => [
          i ? ' ← ' : '',
          h('a', {href: trialHref(name, a.number), text: '#' + a.number}),
          a.parent_step !== null && a.parent_step !== undefined ? ` (step ${a.parent_step})` : '',
        ]))]);
      }
      facts.replaceChildren(h('dl', null, kv.flatMap(([k, val]) => [h('dt', {text: k}), h('dd', null, val)])));
      if (t.error) facts.append(h('pre', {class: 'error trial-error', text: t.error}));

      // parameters
      const params = Object.entries(t.params || {});
      pp.body.replaceChildren(params.length ? h('table', {class: 'data kv', id: 'trial-params'},
        h('tbody', null, params.map(([k, val]) => h('tr', null, h('th', {text: k}),
          h('td', {class: typeof val === 'number' ? 'num' : null, text: fmtCell(val),
            dataset: typeof val === 'number' ? {value: String(val)} : null})))))
        : h('p', {class: 'note', text: 'No parameters.'}));
      pc.body.replaceChildren(h('pre', {class: 'json', text: JSON.stringify(t.config ?? {}, null, 2)}));

      // events
      const events = t.events || [];
      pe.body.replaceChildren(events.length ? h('div', {class: 'table-wrap'},
        h('table', {class: 'data', id: 'trial-events'},
          h('thead', null, h('tr', null, h('th', {text: 'time'}), h('th', {text: 'event'}),
            h('th', {text: 'detail'}))),
          h('tbody', null, events.map((e) => h('tr', null, h('td', {text: fmtTime(e.time)}),
            h('td', null, STATE_COLORS[String(e.kind).toUpperCase()] ? badge(e.kind) : e.kind),
            h('td', {text: eventDetail(e.detail)}))))))
        : h('p', {class: 'note', text: 'No events.'}));
      pl.body.replaceChildren(t.log_tail
        ? h('pre', {class: 'log', text: t.log_tail})
        : h('p', {class: 'note', text: 'No log.'}));

      // metrics: one small chart each, kept across refreshes so zoom and hover stay.
      const metrics = Object.entries(t.metrics || {});
      if (!metrics.length) {
        metricGrid.replaceChildren(h('p', {class: 'note', text: 'No metrics reported.'}));
      } else if (metricGrid.querySelector('.note')) {
        metricGrid.replaceChildren();
      }
      for (const [m, pts] of metrics) {
        let c = metricCharts.get(m);
        const option = {
          animation: false,
          title: {text: m, left: 8, top: 4, textStyle: {fontSize: 13}},
          grid: {left: 56, right: 16, top: 36, bottom: 40},
          tooltip: {trigger: 'axis',
            formatter: (items) => items.map((e) => `step ${esc(fmtNum(e.value[0]))}: ` +
              `<b>${esc(fmtNum(e.value[1]))}</b>`).join('<br>')},
          xAxis: {type: 'value', scale: true, name: 'step', nameLocation: 'middle', nameGap: 24},
          yAxis: {type: 'value', scale: true},
          series: [{id: 'm', type: 'line', data: pts.map((q) => [q[0], q[1]]),
            showSymbol: pts.length < 60, symbolSize: 4, lineStyle: {width: 1.5, color: '#1f6feb'},
            itemStyle: {color: '#1f6feb'}}],
        };
        if (!c) {
          const el = h('div', {class: 'chart small', dataset: {metric: m}});
          metricGrid.append(el);
          c = echarts.init(el, null, {renderer: 'canvas'});
          v.charts.push(c);
          metricCharts.set(m, c);
          c.setOption(option, {notMerge: true});
        } else {
          c.setOption(option);
        }
      }
      v.counts = {metric_charts: metricCharts.size, events: events.length, params: params.length};
    });
    // One request fills every panel; its failure is shown once, in the metrics panel.
  }

  // An event's detail is free-form: a string, or an object whose empty fields say nothing.
  function eventDetail(detail) {
    if (detail === null || detail === undefined) return '';
    if (typeof detail !== 'object') return String(detail);
    return Object.entries(detail)
      .filter(([, x]) => x !== null && x !== undefined && x !== '')
      .map(([k, x]) => `${k}=${typeof x === 'number' ? fmtNum(x) : fmtCell(x)}`)
      .join('  ');
  }

  // ---------------------------------------------------------------------------------------
  // Agents.

  function viewAgents(v) {
    document.title = 'Agents · hpo';
    const p = makePanel(v, 'agents', 'Agents', {wide: true});
    mainEl.append(h('div', {class: 'grid'}, p.el));
    const get = getter(v);
    addTask(v, p, async () => {
      const d = await get('api/agents');
      const agents = d.agents || [];
      v.counts = {rows: agents.length};
      if (!agents.length) {
        p.body.replaceChildren(h('p', {class: 'note', text: 'No agent has joined yet.'}));
        return;
      }
      const head = ['Agent', 'Host', 'Slots', 'GPUs', 'State', 'Running', 'Last seen', 'First seen'];
      p.body.replaceChildren(h('div', {class: 'table-wrap'}, h('table', {id: 'agents', class: 'data'},
        h('thead', null, h('tr', null, head.map((x) => h('th', {text: x})))),
        h('tbody', null, agents.map((a) => h('tr', {dataset: {agent: a.id}},
          h('td', null, h('b', {text: a.id})),
          h('td', {text: a.host || '—'}),
          h('td', {class: 'num', text: String(a.slots ?? '—')}),
          h('td', {text: a.gpus && a.gpus.length ? a.gpus.map(gpuName).join(', ') : '—'}),
          h('td', null, h('span', {class: 'badge agent-' + a.state, text: a.state})),
          h('td', null, (a.running || []).length ? (a.running || []).flatMap((r, i) => [
            i ? ', ' : '',
            h('a', {href: trialHref(r.study, r.number), text: `${r.study} #${r.number}`}),
          ]) : '—'),
          h('td', {class: 'num', text: a.seen_ago_s === null || a.seen_ago_s === undefined
            ? '—' : fmtDur(a.seen_ago_s) + ' ago', title: fmtTime(a.last_seen)}),
          h('td', {text: fmtTime(a.first_seen)}),
        ))))));
    });
  }

  function gpuName(g) {
    if (g === null || g === undefined) return '?';
    if (typeof g !== 'object') return String(g);
    return g.name || g.model || g.uuid || JSON.stringify(g);
  }

  // ---------------------------------------------------------------------------------------
  // Status for the end-to-end test: what is on screen, counted from the charts themselves.

  let statusQueued = false;
  function scheduleStatus() {
    if (statusQueued) return;
    statusQueued = true;
    setTimeout(() => {
      statusQueued = false;
      writeStatus();
    }, 0);
  }

  function roundMs(t) {
    return t === null ? null : Math.round(t * 10) / 10;
  }

  function writeStatus() {
    const v = current;
    const status = {
      ready: !!(v && v.ready),
      view: v ? v.name : null,
      route: location.hash,
      report: !!REPORT,
      errors: errors.slice(),
      charts: {},
      leaderboard: [],
      counts: v ? Object.assign({}, v.counts) : {},
      // ms from navigation start (performance.now()), rounded to 0.1 ms; null until known.
      timing: {first_screen_ms: v ? roundMs(v.timing.first_screen_ms) : null,
        all_ms: v ? roundMs(v.timing.all_ms) : null},
      first_screen: !!(v && v.timing.first_screen_ms !== null),
    };
    if (v) {
      for (const [k, f] of Object.entries(v.counters)) {
        try {
          status.charts[k] = f();
        } catch (e) {
          status.charts[k] = {error: describe(e)};
        }
      }
      const table = document.getElementById('leaderboard');
      if (table && table.tBodies[0]) {
        for (const tr of table.tBodies[0].rows) {
          const cell = tr.querySelector('td.score');
          const raw = cell ? cell.dataset.value : undefined;
          status.leaderboard.push({trial: Number(tr.dataset.trial),
            score: raw === undefined ? null : Number(raw)});
        }
      }
    }
    statusEl.textContent = JSON.stringify(status);
  }

  // ---------------------------------------------------------------------------------------
  // Live updates.

  let mark = null;
  let polling = false;
  let pollFailing = false;

  async function poll() {
    if (polling) return;
    polling = true;
    try {
      const d = await api('api/changes');
      if (pollFailing) {
        pollFailing = false;
        setConn('live', 'live');
      }
      if (mark === null) {
        mark = d.mark;
      } else if (d.mark !== mark && current && current.ready) {
        // Taken only once the view has settled: a change during a load is picked up next time.
        mark = d.mark;
        await runAll(current, true);
      }
    } catch (e) {
      if (!pollFailing) {
        pollFailing = true;
        setConn('lost', 'disconnected');
        console.error('polling api/changes: ' + describe(e));
      }
    } finally {
      polling = false;
    }
  }

  function setConn(cls, text) {
    connEl.className = 'conn ' + cls;
    connEl.textContent = text;
  }

  // ---------------------------------------------------------------------------------------
  // Start.

  function resizeAll() {
    if (!current) return;
    for (const c of current.charts) c.resize();
  }
  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(resizeAll, 120);
  });
  window.addEventListener('hashchange', render);

  if (typeof echarts === 'undefined') console.error('echarts.min.js did not load: no charts');

  if (REPORT) {
    bannerEl.hidden = false;
    bannerEl.textContent = `report of study ${REPORT.study} generated ${REPORT.generated}`;
    setConn('report', 'offline report');
    const nav = document.getElementById('nav');
    nav.prepend(h('a', {href: studyHref(REPORT.study), 'data-nav': 'study', text: REPORT.study}));
  } else {
    setConn('live', 'live');
    setInterval(poll, POLL_MS);
    poll();
  }
  render();
})();
