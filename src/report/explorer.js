/* aellm's Pareto explorer. Plain JavaScript drawing SVG, no library: the page
   must open offline, years later, from a mail attachment. One state object;
   every control changes it and calls render(), which redraws every view from
   the data, so no view can disagree with another about what is shown. */
(function () {
  'use strict';

  /* Errors go into the page as well as the console: a headless browser test
     reads the DOM (tests/report_browser.sh), and a reader sees a broken view
     explained rather than silently empty. Installed before anything runs. */
  var errorBox = document.getElementById('errors');
  var errorCount = 0;
  function recordError(text) {
    errorCount += 1;
    errorBox.hidden = false;
    errorBox.textContent += text + '\n';
    document.body.setAttribute('data-errors', String(errorCount));
  }
  window.onerror = function (msg, src, line, col) {
    recordError('error: ' + msg + ' (line ' + line + ':' + col + ')');
  };
  window.addEventListener('unhandledrejection', function (e) {
    recordError('unhandled rejection: ' + e.reason);
  });
  var consoleError = console.error;
  console.error = function () {
    recordError('console.error: ' + Array.prototype.join.call(arguments, ' '));
    consoleError.apply(console, arguments);
  };

  var DATA = JSON.parse(document.getElementById('aellm-data').textContent);
  var DATASETS = DATA.datasets || [];
  var SVGNS = 'http://www.w3.org/2000/svg'; /* a name, not something fetched */
  /* Same order as report_plot.c, so a dataset has one colour in both. */
  var PALETTE = ['#1f77b4', '#d95f02', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
                 '#17becf'];
  var OBJ_COLOURS = { acc: '#4c78a8', latency: '#f58518', memory: '#54a24b', energy: '#b279a2' };
  var MiB = 1048576;

  function efficientllm(p, key) {
    var e = p.measurement && p.measurement.efficientllm;
    return e && typeof e[key] === 'number' ? e[key] : null;
  }

  /* Each axis: how to read it from a point and which way is better (the
     Pareto front and the parallel axes' orientation depend on it). */
  var AXES = [
    { key: 'acc', name: 'accuracy', unit: '', higher: true, get: function (p) { return p.acc; } },
    { key: 'latency', name: 'latency', unit: 's', higher: false, get: function (p) { return p.latency_s; } },
    { key: 'memory', name: 'peak memory', unit: 'MiB', higher: false,
      get: function (p) { return p.memory_bytes / MiB; } },
    { key: 'energy', name: 'energy', unit: 'J', higher: false, get: function (p) { return p.energy_j; } },
    { key: 'throughput', name: 'throughput', unit: 'tokens/s', higher: true,
      get: function (p) { return efficientllm(p, 'throughput_tokens_per_s'); } },
    { key: 'amu', name: 'AMU (bandwidth use)', unit: '', higher: true,
      get: function (p) { return efficientllm(p, 'amu'); } },
    { key: 'pcu', name: 'PCU (compute use)', unit: '', higher: true,
      get: function (p) { return efficientllm(p, 'pcu'); } },
    { key: 'compression', name: 'compression rate', unit: 'x', higher: true,
      get: function (p) { return efficientllm(p, 'compression_rate'); } },
    { key: 'tune', name: 'making the model', unit: 's', higher: false,
      get: function (p) { return typeof p.tune_s === 'number' ? p.tune_s : null; } }
  ];
  var CORE = AXES.slice(0, 4);
  function axisOf(key) { return AXES.filter(function (a) { return a.key === key; })[0]; }
  function value(axis, p) {
    var v = axis.get(p);
    return typeof v === 'number' && isFinite(v) ? v : null;
  }

  /* The accuracy objective is a transform for lower-is-better metrics; the
     axis says which, when all datasets agree. */
  function accuracyMetric() {
    var metrics = {};
    DATASETS.forEach(function (ds) {
      (ds.points || []).forEach(function (p) {
        var m = (p.measurement && p.measurement.accuracy_metric) || ds.accuracy_metric;
        if (m) metrics[m] = true;
      });
    });
    var names = Object.keys(metrics);
    return names.length === 1 ? names[0] : null;
  }
  var METRIC = accuracyMetric();
  function axisLabel(axis) {
    if (axis.key === 'acc') {
      var how = METRIC === 'ppl' ? '1 / perplexity' : METRIC === 'kld' ? 'exp(-KLD)' : METRIC;
      return 'accuracy objective' + (how ? ' (' + how + ')' : '') + ', higher is better';
    }
    return axis.name + (axis.unit ? ' (' + axis.unit + ')' : '');
  }

  /* Every point once, with its dataset, for filtering and drawing. */
  var ALL = [];
  DATASETS.forEach(function (ds, d) {
    (ds.points || []).forEach(function (p, i) { ALL.push({ d: d, i: i, p: p, ds: ds }); });
  });
  var AVAILABLE = AXES.filter(function (a) {
    return ALL.some(function (e) { return value(a, e.p) !== null; });
  });

  var state = {
    x: 'latency', y: 'acc', logX: false, logY: false, hidden: {},
    maxLatency: null, maxMemory: null, maxEnergy: null, minAcc: null,
    measured: true, predicted: true, frontOnly: false, brushes: {}, selected: null,
    sensDataset: 0
  };

  /* ---------- helpers ---------- */

  function el(tag, attrs, parent) {
    var node = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(node);
    return node;
  }
  function text(parent, x, y, str, attrs) {
    var t = el('text', Object.assign({ x: x, y: y }, attrs || {}), parent);
    t.textContent = str;
    return t;
  }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  function fmt(v, digits) {
    if (v === null || v === undefined || typeof v !== 'number' || !isFinite(v)) return '\u2014';
    if (v === 0) return '0';
    var a = Math.abs(v);
    if (a >= 1e6 || a < 1e-3) return v.toExponential((digits || 4) - 1);
    return String(Number(v.toPrecision(digits || 4)));
  }
  function colour(d) { return PALETTE[d % PALETTE.length]; }
  function svgRoot(container, w, h) {
    container.textContent = '';
    return el('svg', { viewBox: '0 0 ' + w + ' ' + h, role: 'img' }, container);
  }

  /* ---------- filtering: one predicate for every view ---------- */

  function passesConstraints(p) {
    if (state.maxLatency !== null && !(p.latency_s <= state.maxLatency)) return false;
    if (state.maxMemory !== null && !(p.memory_bytes / MiB <= state.maxMemory)) return false;
    if (state.maxEnergy !== null && !(p.energy_j <= state.maxEnergy)) return false;
    if (state.minAcc !== null && !(p.acc >= state.minAcc)) return false;
    return true;
  }
  function passesBrushes(p) {
    return Object.keys(state.brushes).every(function (k) {
      var v = value(axisOf(k), p), b = state.brushes[k];
      return v !== null && v >= b[0] && v <= b[1];
    });
  }
  function shown(e) {
    if (state.hidden[e.d]) return false;
    var predicted = e.p.provenance === 'predicted';
    if (predicted ? !state.predicted : !state.measured) return false;
    if (state.frontOnly && !e.p.on_front) return false;
    return passesConstraints(e.p) && passesBrushes(e.p);
  }

  /* ---------- scales and ticks ---------- */

  function scale(lo, hi, a, b, log) {
    var f = log ? Math.log10 : function (v) { return v; };
    var l = f(lo), h = f(hi);
    if (h === l) { l -= 0.5; h += 0.5; }
    return function (v) { return a + (f(v) - l) / (h - l) * (b - a); };
  }
  function niceTicks(lo, hi) {
    var raw = (hi - lo) / 5, mag = Math.pow(10, Math.floor(Math.log10(raw))), m = raw / mag;
    var step = mag * (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10), out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
      out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }
  function logTicks(lo, hi) {
    var out = [], mults = Math.log10(hi / lo) < 2 ? [1, 2, 5] : [1];
    for (var e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
      mults.forEach(function (m) {
        var v = m * Math.pow(10, e);
        if (v >= lo && v <= hi) out.push(v);
      });
    return out.length >= 2 ? out : niceTicks(lo, hi);
  }
  /* A range padded so that marks on the edge stay inside the frame. */
  function domain(values, log) {
    var lo = Math.min.apply(null, values), hi = Math.max.apply(null, values);
    if (log) {
      var r = hi / lo, pad = Math.pow(r > 1 ? r : 10, 0.05);
      return [lo / pad, hi * pad];
    }
    var p = hi > lo ? (hi - lo) * 0.05 : Math.abs(hi) * 0.1 || 1;
    return [lo - p, hi + p];
  }
  function canLog(axis) {
    return ALL.every(function (e) { var v = value(axis, e.p); return v === null || v > 0; });
  }
  /* Overlaying a local run with a predicted A100 deployment spans decades:
     such an axis starts logarithmic. */
  function wantsLog(axis) {
    var vs = ALL.map(function (e) { return value(axis, e.p); }).filter(function (v) { return v !== null; });
    return canLog(axis) && vs.length > 1 && Math.max.apply(null, vs) / Math.min.apply(null, vs) > 50;
  }

  /* ---------- the 2-D front ---------- */

  /* The points of `list` not dominated in (x, y), best x first: sorted by x,
     a point stays when its y beats every point kept before it. */
  function front2d(list, ax, ay) {
    var pts = list.map(function (e) { return { e: e, x: value(ax, e.p), y: value(ay, e.p) }; })
      .filter(function (q) { return q.x !== null && q.y !== null; });
    pts.sort(function (a, b) {
      return ax.higher ? b.x - a.x || (ay.higher ? b.y - a.y : a.y - b.y)
                       : a.x - b.x || (ay.higher ? b.y - a.y : a.y - b.y);
    });
    var kept = [];
    pts.forEach(function (q) {
      var last = kept[kept.length - 1];
      if (!last || (ay.higher ? q.y > last.y : q.y < last.y)) kept.push(q);
    });
    return kept;
  }

  /* ---------- picks and baselines ---------- */

  /* Marks of a dataset: the utility pick, the default, and each baseline's
     pick (baselines that chose the same point share one mark and label). */
  function marksOf(ds, d) {
    var marks = [];
    function at(index) { return typeof index === 'number' && index >= 0 && ds.points[index] ? index : null; }
    if (at(ds.default_index) !== null) marks.push({ kind: 'default', d: d, i: ds.default_index, label: 'default' });
    if (at(ds.pick_index) !== null) marks.push({ kind: 'pick', d: d, i: ds.pick_index, label: 'utility pick' });
    var byPoint = {};
    (ds.baselines || []).forEach(function (b) {
      if (b.skipped) return;
      var key = at(b.point_index) !== null ? 'p' + b.point_index : b.pick_objectives ? 'o' + JSON.stringify(b.pick_objectives) : null;
      if (!key) return;
      if (!byPoint[key]) {
        byPoint[key] = { kind: 'baseline', d: d, i: at(b.point_index), methods: [], objectives: b.pick_objectives };
        marks.push(byPoint[key]);
      }
      byPoint[key].methods.push(b.method);
    });
    marks.forEach(function (m) { if (m.kind === 'baseline') m.label = m.methods.join(', '); });
    return marks;
  }
  /* A baseline's pick the search did not keep has its four objectives only. */
  function markPoint(m) {
    if (m.i !== null) return DATASETS[m.d].points[m.i];
    var o = m.objectives;
    return { acc: o.acc, latency_s: o.latency, memory_bytes: o.memory, energy_j: o.energy,
             provenance: 'measured', on_front: false, baseline_only: true };
  }
  function markShown(m) {
    if (state.hidden[m.d]) return false;
    if (m.i !== null) return shown({ d: m.d, p: markPoint(m) });
    return passesConstraints(markPoint(m)) && passesBrushes(markPoint(m));
  }

  function markShape(kind, x, y, parent, fill) {
    var s = kind === 'pick' ? 10 : 7, pts = [];
    if (kind === 'pick') {
      for (var k = 0; k < 10; k++) {
        var a = -Math.PI / 2 + k * Math.PI / 5, r = k % 2 ? s * 0.45 : s;
        pts.push((x + r * Math.cos(a)).toFixed(1) + ',' + (y + r * Math.sin(a)).toFixed(1));
      }
    } else if (kind === 'default') {
      pts = [[x, y - s], [x + s, y], [x, y + s], [x - s, y]].map(function (q) { return q.join(','); });
    } else {
      pts = [[x, y - s], [x + s * 0.9, y + s * 0.6], [x - s * 0.9, y + s * 0.6]].map(function (q) { return q.join(','); });
    }
    return el('polygon', { points: pts.join(' '), fill: fill, 'fill-opacity': kind === 'pick' ? 1 : 0.35,
                           stroke: '#111', 'stroke-width': 1.2, 'class': 'point' }, parent);
  }

  /* ---------- tooltip and selection ---------- */

  var tooltip = document.getElementById('tooltip');
  function row(name, val) { return '<tr><td>' + esc(name) + '</td><td>' + val + '</td></tr>'; }

  function describe(ds, p, title) {
    var m = p.measurement || {}, prov = p.provenance || 'measured', h = [];
    h.push('<strong>' + esc(title || 'configuration') + '</strong> \u00b7 ' + esc(ds.label) + ' ');
    h.push('<span class="badge ' + (prov === 'predicted' ? 'predicted' : 'measured') + '">' + esc(prov) + '</span>');
    if (p.on_front) h.push(' <span class="note">on the 4-objective front</span>');
    h.push('<table>');
    var acc = fmt(p.acc) + (m.accuracy_metric ? ' <span class="note">(' + esc(m.accuracy_metric) +
      (m.accuracy_metric === 'ppl' && p.acc > 0 ? ' ' + fmt(1 / p.acc) : '') +
      (typeof m.accuracy_stderr === 'number' ? ' \u00b1 ' + fmt(m.accuracy_stderr, 2) : '') + ')</span>' : '');
    h.push(row('accuracy', acc));
    var lat = fmt(p.latency_s) + ' s';
    if (typeof m.latency_p10_s === 'number')
      lat += ' <span class="note">(p10 ' + fmt(m.latency_p10_s) + ', p90 ' + fmt(m.latency_p90_s) + ')</span>';
    h.push(row('latency', lat));
    h.push(row('peak memory', fmt(p.memory_bytes / MiB) + ' MiB'));
    h.push(row('energy', fmt(p.energy_j) + ' J' + (m.energy_source ? ' <span class="note">(' + esc(m.energy_source) +
      (m.energy_measured === false ? ', modelled' : '') + ')</span>' : '')));
    if (typeof p.tune_s === 'number') h.push(row('making the model', fmt(p.tune_s) + ' s' +
      (m.production_s ? ' <span class="note">(' + Object.keys(m.production_s).filter(function (k) {
        return k !== 'total'; }).map(function (k) { return esc(k) + ' ' + fmt(m.production_s[k]) + ' s'; })
        .join(', ') + ')</span>' : '')));
    if (p.violation) h.push(row('violation', fmt(p.violation) + ' <span class="note">(infeasible)</span>'));
    if (m.latency_reps !== undefined)
      h.push(row('repetitions', esc(m.latency_reps) + (m.latency_converged === false ? ' (not converged)' : '')));
    if (m.paired_with) h.push(row('paired with', esc(m.paired_with)));
    if (m.store_key) h.push(row('store key', '<code>' + esc(String(m.store_key).slice(0, 16)) + '\u2026</code>'));
    if (m.hardware) h.push(row('measured on', esc(m.hardware) + (m.engine ? ' \u00b7 engine ' + esc(m.engine) : '')));
    var e = m.efficientllm;
    if (e) h.push(row('EfficientLLM', 'throughput ' + fmt(e.throughput_tokens_per_s) + ' tok/s, AMU ' +
      fmt(e.amu, 3) + ', PCU ' + fmt(e.pcu, 3) + ', compression ' + fmt(e.compression_rate, 3) + 'x'));
    var objectives = m.efficiency_objectives || ds.efficiency_objectives;
    if (objectives) h.push(row('objectives', '<span class="note">' + esc(objectives) + '</span>'));
    if (p.baseline_only) h.push(row('note', 'a baseline\'s pick the search did not keep (four objectives only)'));
    h.push('</table>');
    var config = p.eval_config || p.config;
    if (config) h.push('<pre class="config">' + esc(JSON.stringify(config, null, 1)) + '</pre>');
    return h.join('');
  }
  function showTip(evt, html) {
    tooltip.innerHTML = html;
    tooltip.hidden = false;
    moveTip(evt);
  }
  function moveTip(evt) {
    var w = tooltip.offsetWidth, h = tooltip.offsetHeight, x = evt.clientX + 16, y = evt.clientY + 12;
    if (x + w > window.innerWidth - 8) x = evt.clientX - w - 16;
    if (y + h > window.innerHeight - 8) y = Math.max(8, window.innerHeight - h - 8);
    tooltip.style.left = x + 'px';
    tooltip.style.top = y + 'px';
  }
  function hideTip() { tooltip.hidden = true; }
  function hoverable(node, ds, p, title) {
    node.addEventListener('mouseenter', function (evt) { showTip(evt, describe(ds, p, title)); });
    node.addEventListener('mousemove', moveTip);
    node.addEventListener('mouseleave', hideTip);
    node.addEventListener('click', function () {
      state.selected = { ds: ds, p: p, title: title };
      renderSelected();
    });
  }
  function renderSelected() {
    var box = document.getElementById('selected');
    if (!state.selected) { box.innerHTML = '<p class="note">Nothing selected.</p>'; return; }
    box.innerHTML = describe(state.selected.ds, state.selected.p, state.selected.title);
  }

  /* ---------- the scatter of two objectives ---------- */

  function drawAxes(svg, box, xs, ys, xd, yd, ax, ay) {
    el('rect', { x: box.l, y: box.t, width: box.r - box.l, height: box.b - box.t, 'class': 'frame' }, svg);
    (state.logX ? logTicks : niceTicks)(xd[0], xd[1]).forEach(function (v) {
      var x = xs(v);
      el('line', { x1: x, x2: x, y1: box.t, y2: box.b, 'class': 'grid' }, svg);
      text(svg, x, box.b + 16, fmt(v, 3), { 'text-anchor': 'middle' });
    });
    (state.logY ? logTicks : niceTicks)(yd[0], yd[1]).forEach(function (v) {
      var y = ys(v);
      el('line', { x1: box.l, x2: box.r, y1: y, y2: y, 'class': 'grid' }, svg);
      text(svg, box.l - 6, y + 4, fmt(v, 3), { 'text-anchor': 'end' });
    });
    text(svg, (box.l + box.r) / 2, box.b + 38, axisLabel(ax) + (state.logX ? ' \u2014 log' : ''),
         { 'text-anchor': 'middle', 'class': 'axis-title' });
    var yt = text(svg, 0, 0, axisLabel(ay) + (state.logY ? ' \u2014 log' : ''),
                  { 'text-anchor': 'middle', 'class': 'axis-title' });
    yt.setAttribute('transform', 'translate(' + (box.l - 58) + ',' + (box.b + box.t) / 2 + ') rotate(-90)');
  }

  function stepPath(front, xs, ys) {
    return front.map(function (q, k) {
      if (!k) return 'M' + xs(q.x).toFixed(1) + ',' + ys(q.y).toFixed(1);
      return 'H' + xs(q.x).toFixed(1) + 'V' + ys(q.y).toFixed(1);
    }).join('');
  }

  /* Baselines often pick neighbouring points: a label moves down (then up)
     a line at a time until it overlaps none placed before, so all stay
     readable. Widths are estimated; the font is small and fixed. */
  function placeLabel(svg, placed, x, y, label, box) {
    var w = label.length * 5.6, h = 11, offsets = [0, 12, -12, 24, -24, 36, -36, 48, -48];
    var overlaps = function (a) {
      return placed.some(function (b) { return a.x < b.x + b.w && b.x < a.x + a.w && a.y - h < b.y && b.y - h < a.y; });
    };
    var at = { x: x + w > box.r ? x - w - 18 : x, y: y, w: w };
    for (var k = 0; k < offsets.length; k++) {
      var c = { x: at.x, y: y + offsets[k], w: w };
      if (!overlaps(c)) { at = c; break; }
    }
    placed.push(at);
    text(svg, at.x, at.y, label, { 'class': 'mark-label' });
  }

  function renderScatter() {
    var ax = axisOf(state.x), ay = axisOf(state.y), W = 900, H = 540;
    var box = { l: 78, r: W - 16, t: 14, b: H - 52 };
    var svg = svgRoot(document.getElementById('scatter'), W, H);
    var okLog = function (v, log) { return v !== null && (!log || v > 0); };
    var list = ALL.filter(shown).filter(function (e) {
      return okLog(value(ax, e.p), state.logX) && okLog(value(ay, e.p), state.logY);
    });
    var marks = [];
    DATASETS.forEach(function (ds, d) { marks = marks.concat(marksOf(ds, d)); });
    marks = marks.filter(function (m) {
      var p = markPoint(m);
      return markShown(m) && okLog(value(ax, p), state.logX) && okLog(value(ay, p), state.logY);
    });
    if (!list.length) {
      text(svg, W / 2, H / 2, 'No point passes the constraints and toggles.', { 'text-anchor': 'middle' });
      return 0;
    }
    var all = list.map(function (e) { return e.p; }).concat(marks.map(markPoint));
    var xd = domain(all.map(function (p) { return value(ax, p); }), state.logX);
    var yd = domain(all.map(function (p) { return value(ay, p); }), state.logY);
    var xs = scale(xd[0], xd[1], box.l, box.r, state.logX), ys = scale(yd[0], yd[1], box.b, box.t, state.logY);
    drawAxes(svg, box, xs, ys, xd, yd, ax, ay);
    DATASETS.forEach(function (ds, d) {
      var mine = list.filter(function (e) { return e.d === d; });
      var front = front2d(mine, ax, ay);
      if (front.length > 1)
        el('path', { d: stepPath(front, xs, ys), fill: 'none', stroke: colour(d), 'stroke-width': 2 }, svg);
    });
    list.forEach(function (e) {
      var predicted = e.p.provenance === 'predicted', c = colour(e.d);
      var attrs = { cx: xs(value(ax, e.p)).toFixed(1), cy: ys(value(ay, e.p)).toFixed(1), r: 4.5,
        fill: predicted ? '#fff' : c, 'fill-opacity': e.p.violation > 0 ? 0.25 : 0.7,
        stroke: c, 'stroke-width': predicted ? 1.8 : 1, 'class': 'point' };
      /* accuracy measured here, latency/memory/energy predicted for a target
         deployment (search --hardware): a dashed ring says which is which */
      if (targeted(e.ds)) {
        attrs['stroke-dasharray'] = '2,1.5';
        attrs['stroke-width'] = 1.8;
        attrs['fill-opacity'] = e.p.violation > 0 ? 0.15 : 0.35;
      }
      var dot = el('circle', attrs, svg);
      hoverable(dot, e.ds, e.p, 'point ' + e.i);
    });
    var placed = [];
    marks.forEach(function (m) {
      var p = markPoint(m), x = xs(value(ax, p)), y = ys(value(ay, p));
      var shape = markShape(m.kind, x, m.kind === 'baseline' ? y + 13 : y, svg, colour(m.d));
      hoverable(shape, DATASETS[m.d], p, m.label);
      if (m.kind === 'baseline') placeLabel(svg, placed, x + 9, y + 17, m.label, box);
    });
    return list.length;
  }

  function targeted(ds) {
    return /^predicted/.test(ds.efficiency_objectives || '');
  }

  function renderLegend() {
    var box = document.getElementById('legend'), h = [];
    DATASETS.forEach(function (ds, d) {
      if (!state.hidden[d]) h.push('<span><i class="swatch" style="background:' + colour(d) + '"></i>' + esc(ds.label) + '</span>');
    });
    var icon = function (kind) {
      var svg = '<svg width="18" height="18" viewBox="0 0 18 18">';
      if (kind === 'pick') svg += '<polygon points="9,1 11,7 17,7 12,11 14,17 9,13 4,17 6,11 1,7 7,7" fill="#555" stroke="#111"/>';
      if (kind === 'default') svg += '<polygon points="9,2 16,9 9,16 2,9" fill="#ccc" stroke="#111"/>';
      if (kind === 'baseline') svg += '<polygon points="9,3 16,14 2,14" fill="#ccc" stroke="#111"/>';
      if (kind === 'predicted') svg += '<circle cx="9" cy="9" r="5" fill="#fff" stroke="#555" stroke-width="1.8"/>';
      if (kind === 'front') svg += '<path d="M1,14H8V4H17" fill="none" stroke="#555" stroke-width="2"/>';
      if (kind === 'infeasible') svg += '<circle cx="9" cy="9" r="5" fill="#555" fill-opacity="0.25" stroke="#555"/>';
      if (kind === 'targeted') svg += '<circle cx="9" cy="9" r="5" fill="#555" fill-opacity="0.35" stroke="#555" stroke-width="1.8" stroke-dasharray="2,1.5"/>';
      return svg + '</svg>';
    };
    h.push('<span>' + icon('pick') + 'utility pick</span>', '<span>' + icon('default') + 'default configuration</span>',
           '<span>' + icon('baseline') + 'baseline pick (labelled)</span>', '<span>' + icon('front') + '2-D Pareto front</span>',
           '<span>' + icon('predicted') + 'predicted point (hollow)</span>',
           '<span>' + icon('targeted') + 'accuracy measured, efficiency predicted for a target (dashed)</span>',
           '<span>' + icon('infeasible') + 'infeasible (violates a constraint or the accuracy floor)</span>');
    box.innerHTML = h.join('');
  }

  /* ---------- parallel coordinates with brushing ---------- */

  function renderParallel() {
    var W = 900, H = 320, top = 34, bottom = H - 30, left = 90, right = W - 90;
    var svg = svgRoot(document.getElementById('parallel'), W, H);
    var base = ALL.filter(function (e) { return !state.hidden[e.d]; });
    if (!base.length) return;
    /* Axis ranges over the datasets shown, not the filtered points: a brush
       must not move the axis it is drawn on. Better is up on every axis. */
    var axes = CORE.map(function (a, k) {
      var vs = base.map(function (e) { return value(a, e.p); }).filter(function (v) { return v !== null; });
      var log = vs.every(function (v) { return v > 0; }) && Math.max.apply(null, vs) / Math.min.apply(null, vs) > 50;
      var d = domain(vs, log);
      var x = left + k * (right - left) / (CORE.length - 1);
      var s = a.higher ? scale(d[0], d[1], bottom, top, log) : scale(d[0], d[1], top, bottom, log);
      return { a: a, x: x, s: s, d: d, log: log };
    });
    ALL.filter(shown).forEach(function (e) {
      var pts = axes.map(function (A) { return A.x + ',' + A.s(value(A.a, e.p)).toFixed(1); });
      var line = el('polyline', { points: pts.join(' '), fill: 'none', stroke: colour(e.d),
        'stroke-opacity': e.p.on_front ? 0.85 : 0.3, 'stroke-width': e.ds.pick_index === e.i ? 3 : 1.4,
        'class': 'point' }, svg);
      hoverable(line, e.ds, e.p, 'point ' + e.i);
    });
    axes.forEach(function (A) { drawParallelAxis(svg, A, top, bottom); });
  }

  function drawParallelAxis(svg, A, top, bottom) {
    el('line', { x1: A.x, x2: A.x, y1: top, y2: bottom, stroke: '#555' }, svg);
    text(svg, A.x, 14, A.a.name + (A.a.unit ? ' (' + A.a.unit + ')' : ''), { 'text-anchor': 'middle', 'class': 'axis-title' });
    text(svg, A.x, 27, (A.a.higher ? 'higher' : 'lower') + ' is better' + (A.log ? ', log' : ''),
         { 'text-anchor': 'middle', 'class': 'mark-label' });
    var ends = A.a.higher ? [A.d[1], A.d[0]] : [A.d[0], A.d[1]];
    text(svg, A.x + 6, top + 4, fmt(ends[0], 3), { 'class': 'mark-label' });
    text(svg, A.x + 6, bottom, fmt(ends[1], 3), { 'class': 'mark-label' });
    var b = state.brushes[A.a.key];
    if (b) {
      var y0 = A.s(b[0]), y1 = A.s(b[1]);
      el('rect', { x: A.x - 9, width: 18, y: Math.min(y0, y1), height: Math.max(2, Math.abs(y1 - y0)), 'class': 'brush' }, svg);
    }
    var hit = el('rect', { x: A.x - 14, width: 28, y: top, height: bottom - top, fill: 'transparent', 'class': 'pc-axis' }, svg);
    attachBrush(svg, hit, A, top, bottom);
  }

  /* Pixel y of a pointer event in the SVG's own units (it is scaled to fit). */
  function svgY(svg, evt) {
    var r = svg.getBoundingClientRect(), vb = svg.viewBox.baseVal;
    return (evt.clientY - r.top) * vb.height / r.height;
  }
  function invert(A, y, top, bottom) {
    /* the scale is monotone: bisect rather than carry an inverse per kind */
    var lo = A.d[0], hi = A.d[1];
    for (var k = 0; k < 60; k++) {
      var mid = A.log ? Math.sqrt(lo * hi) : (lo + hi) / 2;
      var above = A.s(mid) < y; /* smaller pixel y is higher on screen */
      if (above === A.a.higher) hi = mid; else lo = mid;
    }
    return Math.max(A.d[0], Math.min(A.d[1], lo));
  }
  function attachBrush(svg, hit, A, top, bottom) {
    var start = null, rect = null;
    hit.addEventListener('pointerdown', function (evt) {
      start = Math.max(top, Math.min(bottom, svgY(svg, evt)));
      hit.setPointerCapture(evt.pointerId);
      rect = el('rect', { x: A.x - 9, width: 18, y: start, height: 1, 'class': 'brush' }, svg);
    });
    hit.addEventListener('pointermove', function (evt) {
      if (start === null) return;
      var y = Math.max(top, Math.min(bottom, svgY(svg, evt)));
      rect.setAttribute('y', Math.min(start, y));
      rect.setAttribute('height', Math.max(1, Math.abs(y - start)));
    });
    hit.addEventListener('pointerup', function (evt) {
      if (start === null) return;
      var y = Math.max(top, Math.min(bottom, svgY(svg, evt)));
      if (Math.abs(y - start) > 3) {
        var a = invert(A, start, top, bottom), b = invert(A, y, top, bottom);
        state.brushes[A.a.key] = [Math.min(a, b), Math.max(a, b)];
      }
      start = null;
      render();
    });
    hit.addEventListener('dblclick', function () { delete state.brushes[A.a.key]; render(); });
  }

  /* ---------- sensitivity ---------- */

  function renderSensitivity() {
    var box = document.getElementById('sensitivity'), select = document.getElementById('sens-dataset');
    var withSens = DATASETS.map(function (ds, d) { return d; }).filter(function (d) { return DATASETS[d].sensitivity; });
    if (!withSens.length) {
      select.hidden = true;
      box.innerHTML = '<p class="note">No sensitivity: the searches ran without refinement rounds (or the store has none).</p>';
      return;
    }
    if (withSens.indexOf(state.sensDataset) < 0) state.sensDataset = withSens[0];
    select.hidden = withSens.length < 2;
    var sens = DATASETS[state.sensDataset].sensitivity, knobs = Object.keys(sens);
    var W = 900, H = 300, left = 56, right = W - 12, top = 28, bottom = H - 70;
    var svg = svgRoot(box, W, H), max = 0;
    knobs.forEach(function (k) {
      CORE.forEach(function (a) { var v = sens[k] && sens[k][a.key]; if (typeof v === 'number') max = Math.max(max, v); });
    });
    var ys = scale(0, max || 1, bottom, top, false), group = (right - left) / knobs.length;
    var bar = Math.min(18, group / 5);
    niceTicks(0, max || 1).forEach(function (v) {
      el('line', { x1: left, x2: right, y1: ys(v), y2: ys(v), 'class': 'grid' }, svg);
      text(svg, left - 6, ys(v) + 4, fmt(v, 2), { 'text-anchor': 'end' });
    });
    knobs.forEach(function (k, g) {
      var cx = left + group * (g + 0.5);
      CORE.forEach(function (a, j) {
        var v = sens[k] && sens[k][a.key];
        if (typeof v !== 'number') return;
        var r = el('rect', { x: cx + (j - 2) * bar, y: ys(v), width: bar - 1, height: Math.max(0, bottom - ys(v)), fill: OBJ_COLOURS[a.key] }, svg);
        el('title', {}, r).textContent = k + ' \u2192 ' + a.name + ': ' + fmt(v, 3);
      });
      var t = text(svg, 0, 0, k.replace(/^[a-z]+\./, ''), { 'text-anchor': 'end' });
      t.setAttribute('transform', 'translate(' + cx + ',' + (bottom + 12) + ') rotate(-30)');
    });
    el('line', { x1: left, x2: right, y1: bottom, y2: bottom, stroke: '#555' }, svg);
    var yt = text(svg, 0, 0, 'share of the objective\u2019s range', { 'text-anchor': 'middle', 'class': 'axis-title' });
    yt.setAttribute('transform', 'translate(14,' + (top + bottom) / 2 + ') rotate(-90)');
    CORE.forEach(function (a, j) {
      el('rect', { x: left + 10 + j * 110, y: 6, width: 12, height: 12, fill: OBJ_COLOURS[a.key] }, svg);
      text(svg, left + 26 + j * 110, 16, a.name);
    });
  }

  /* ---------- tables ---------- */

  function renderBaselines() {
    var box = document.getElementById('baselines'), h = [];
    DATASETS.forEach(function (ds, d) {
      if (state.hidden[d] || !ds.baselines || !ds.baselines.length) return;
      h.push('<h3 class="note"><i class="swatch" style="background:' + colour(d) + '"></i> ' + esc(ds.label) + '</h3>');
      h.push('<table class="data"><tr><th>method</th><th>efficiency</th><th>best efficiency</th><th>acc change</th>' +
             '<th>evaluations</th><th>points</th><th>hypervolume</th><th>note</th></tr>');
      ds.baselines.forEach(function (b, k) {
        h.push('<tr data-d="' + d + '" data-k="' + k + '"' + (b.skipped ? ' class="skipped"' : '') + '><td>' + esc(b.method) + '</td>' +
               '<td class="num">' + fmt(b.efficiency) + '</td><td class="num">' + fmt(b.best_efficiency) + '</td>' +
               '<td class="num">' + (typeof b.acc_change === 'number' && b.acc_change > 0 ? '+' : '') + fmt(b.acc_change, 3) + '</td>' +
               '<td class="num">' + fmt(b.evaluations) + '</td><td class="num">' + fmt(b.points) + '</td>' +
               '<td class="num">' + fmt(b.hypervolume) + '</td><td>' + esc(b.note || '') + '</td></tr>');
      });
      h.push('</table>');
    });
    box.innerHTML = h.length ? h.join('') : '<p class="note">No baselines (run aellm search --baselines).</p>';
    /* a row selects its pick, to read the configuration it chose */
    Array.prototype.forEach.call(box.querySelectorAll('tr[data-d]'), function (tr) {
      tr.addEventListener('click', function () {
        var ds = DATASETS[+tr.dataset.d], b = ds.baselines[+tr.dataset.k];
        if (typeof b.point_index === 'number' && b.point_index >= 0) {
          state.selected = { ds: ds, p: ds.points[b.point_index], title: b.method + ' pick' };
          renderSelected();
        }
      });
    });
  }

  function renderInfo() {
    var h = [];
    DATASETS.forEach(function (ds, d) {
      var c = ds.context || {};
      h.push('<h3 class="note"><i class="swatch" style="background:' + colour(d) + '"></i> ' + esc(ds.label) + '</h3><table class="data">');
      h.push(row('source', esc(ds.source || '') + ' (' + esc(ds.kind || '') + ')'));
      if (c.model) h.push(row('model', esc(c.model) + (c.shape ? ' \u2192 ' + esc(c.shape) : '')));
      if (c.task) h.push(row('task \u00b7 hardware', esc(c.task) + ' \u00b7 ' + esc(c.hardware || '')));
      h.push(row('points', String((ds.points || []).length) + (c.budget ? ' (budget ' + esc(c.budget) + ', space ' + esc(c.space_points) + ')' : '')));
      if (ds.efficiency_objectives) h.push(row('objectives', esc(ds.efficiency_objectives)));
      if (typeof ds.efficiency === 'number')
        h.push(row('efficiency of the pick', fmt(ds.efficiency) + ' <span class="note">' + esc(ds.efficiency_definition || '') + '</span>'));
      if (typeof ds.min_acc === 'number') h.push(row('accuracy floor', fmt(ds.min_acc)));
      if (c.weights) h.push(row('utility weights', esc(JSON.stringify(c.weights))));
      if (ds.efficientllm_definitions) h.push(row('EfficientLLM', '<span class="note">' + esc(ds.efficientllm_definitions) + '</span>'));
      h.push('</table>');
    });
    document.getElementById('dataset-info').innerHTML = h.join('');
  }

  /* ---------- controls ---------- */

  function setupControls() {
    ['x-axis', 'y-axis'].forEach(function (id) {
      var s = document.getElementById(id);
      AVAILABLE.forEach(function (a) {
        var o = document.createElement('option');
        o.value = a.key;
        o.textContent = a.name + (a.unit ? ' (' + a.unit + ')' : '');
        s.appendChild(o);
      });
      s.value = id === 'x-axis' ? state.x : state.y;
      s.addEventListener('change', function () {
        var key = id === 'x-axis' ? 'x' : 'y';
        state[key] = s.value;
        syncLog(key);
        render();
      });
    });
    ['x', 'y'].forEach(function (k) {
      var box = document.getElementById(k + '-log');
      box.addEventListener('change', function () { state[k === 'x' ? 'logX' : 'logY'] = box.checked; render(); });
      syncLog(k);
    });
    var numbers = { 'max-latency': 'maxLatency', 'max-memory': 'maxMemory', 'max-energy': 'maxEnergy', 'min-acc': 'minAcc' };
    Object.keys(numbers).forEach(function (id) {
      document.getElementById(id).addEventListener('input', function (evt) {
        var v = parseFloat(evt.target.value);
        state[numbers[id]] = isFinite(v) ? v : null;
        render();
      });
    });
    var flags = { 'show-measured': 'measured', 'show-predicted': 'predicted', 'front-only': 'frontOnly' };
    Object.keys(flags).forEach(function (id) {
      document.getElementById(id).addEventListener('change', function (evt) { state[flags[id]] = evt.target.checked; render(); });
    });
    document.getElementById('reset').addEventListener('click', function () {
      Object.keys(numbers).forEach(function (id) { document.getElementById(id).value = ''; state[numbers[id]] = null; });
      state.brushes = {};
      render();
    });
    setupDatasets();
  }

  /* A log axis needs positive values; it starts on when they span decades. */
  function syncLog(k) {
    var axis = axisOf(state[k]), box = document.getElementById(k + '-log'), ok = canLog(axis);
    box.disabled = !ok;
    box.checked = ok && wantsLog(axis);
    state[k === 'x' ? 'logX' : 'logY'] = box.checked;
  }

  function setupDatasets() {
    var box = document.getElementById('datasets'), select = document.getElementById('sens-dataset');
    DATASETS.forEach(function (ds, d) {
      var label = document.createElement('label');
      label.className = 'dataset-toggle';
      var input = document.createElement('input');
      input.type = 'checkbox';
      input.checked = true;
      input.addEventListener('change', function () { state.hidden[d] = !input.checked; render(); });
      var sw = document.createElement('i');
      sw.className = 'swatch';
      sw.style.background = colour(d);
      var name = document.createElement('span');
      name.textContent = ds.label + ' (' + (ds.points || []).length + ')';
      label.appendChild(input);
      label.appendChild(sw);
      label.appendChild(name);
      box.appendChild(label);
      if (ds.sensitivity) {
        var o = document.createElement('option');
        o.value = d;
        o.textContent = ds.label;
        select.appendChild(o);
      }
    });
    select.addEventListener('change', function () { state.sensDataset = +select.value; renderSensitivity(); });
  }

  function render() {
    hideTip();
    var drawn = renderScatter();
    renderLegend();
    renderParallel();
    renderSensitivity();
    renderBaselines();
    var n = ALL.filter(shown).length;
    document.getElementById('shown').textContent = n + ' of ' + ALL.length + ' points shown' +
      (Object.keys(state.brushes).length ? ' (brushed: ' + Object.keys(state.brushes).join(', ') + ')' : '');
    /* the marker the browser test waits for: how many points were drawn */
    document.body.setAttribute('data-rendered', String(drawn));
  }

  document.getElementById('subtitle').textContent = DATASETS.length + ' dataset' + (DATASETS.length === 1 ? '' : 's') +
    ' \u00b7 ' + ALL.length + ' points \u00b7 generated ' + (DATA.generated || '?') + ' by ' + (DATA.generator || 'aellm');
  setupControls();
  renderInfo();
  renderSelected();
  render();
})();
