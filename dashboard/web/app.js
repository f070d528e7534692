// The dashboard page: the list of migrations, or one migration followed live over server-sent
// events; or, in a report file, every migration the file carries (no server, no actions).
import { Chart, probeTimeline, timeRange } from './charts.js';
import { clock, cloudWatchCard, decisionLog, el, listPage, pct, residualCard, summaryCard } from './render.js';

const main = document.getElementById('main');
const conn = document.getElementById('conn');
/** What a test (or a curious person) can read: views received and when the last one arrived. */
const probe = (window.cutoverDashboard = { views: 0, lastReceivedAtMs: 0, lastView: undefined, page: 'loading', arrivals: [] });
const READ_ONLY = document.querySelector('meta[name="cutover-read-only"]')?.getAttribute('content') === 'true';
const SETTLED = ['rolled-back', 'torn-down', 'complete'];
const TOKEN_KEY = 'cutover-token';

function takeToken() {
  const url = new URL(location.href);
  const token = url.searchParams.get('token');
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    url.searchParams.delete('token');
    history.replaceState(null, '', url.pathname + url.search + url.hash);
  }
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

function received(view) {
  probe.views += 1;
  probe.lastReceivedAtMs = Date.now();
  probe.lastView = view;
  // When each logged event first reached the page: the update latency from a decision to the page.
  const last = view.decisions?.at(-1);
  if (last && probe.arrivals.at(-1)?.seq !== last.seq) probe.arrivals.push({ seq: last.seq, eventAtMs: last.atMs, receivedAtMs: probe.lastReceivedAtMs });
}

/** Follows an SSE stream: `view` events go to onView, `problem` events to the banner. */
function follow(url, onView) {
  const source = new EventSource(url);
  source.addEventListener('open', () => setConn('live', 'live'));
  source.addEventListener('error', () => setConn('reconnecting…', 'down'));
  source.addEventListener('view', (e) => {
    const view = JSON.parse(e.data);
    received(view);
    setConn('live', 'live');
    onView(view);
  });
  source.addEventListener('problem', (e) => setConn(`source: ${JSON.parse(e.data).message}`, 'down'));
  return source;
}

function setConn(text, state) {
  conn.textContent = text;
  conn.dataset.state = state;
}

// ---------------------------------------------------------------------------------------------
// A migration's page
// ---------------------------------------------------------------------------------------------

/**
 * Two sets of series on one time axis (uPlot takes one x array): `a` and `b` are `[times, ...columns]`;
 * each column keeps its values at its own times and is null at the other set's.
 */
function joinTimes(a, b) {
  const xs = [...new Set([...a[0], ...b[0]])].sort((p, q) => p - q);
  const spread = (set) => {
    const at = new Map(set[0].map((x, i) => [x, i]));
    return set.slice(1).map((column) => xs.map((x) => (at.has(x) ? column[at.get(x)] : null)));
  };
  return [xs, ...spread(a), ...spread(b)];
}

/** CloudWatch's series beside the judge's: the same colour, dotted, labelled as CloudWatch. */
const cw = (label, color, extra = {}) => ({ label: `${label} (CloudWatch)`, color, dash: [2, 3], width: 1.5, spanGaps: true, ...extra });

/**
 * Builds the page's frame once; `update(view)` fills it with each new view. With
 * `options.cloudWatch` (an AWS migration) the charts also draw CloudWatch's per-minute series.
 */
function migrationPage(container, options) {
  const withCw = options.cloudWatch === true;
  const spanned = (series) => (withCw ? series.map((s) => ({ ...s, spanGaps: true })) : series);
  const charts = [];
  const chart = (id, title, note, spec) => {
    const holder = el('div', { class: 'chart', id: `chart-${id}` });
    container.querySelector('.grid').append(el('section', { class: 'card', id: `card-${id}` }, el('h2', null, title), note ? el('p', { class: 'muted small' }, note) : null, holder));
    const c = new Chart(holder, spec);
    charts.push(c);
    return c;
  };
  let current;
  const onlyChanges = el('input', { type: 'checkbox', id: 'only-changes', onchange: () => current && renderLog(current) });
  const logTable = el('table', { class: 'log' }, el('tbody'));
  const probePanel = el('div', { class: 'probe-detail muted small', id: 'probe-detail', 'aria-live': 'polite' }, 'Select a probe mark to see its findings.');
  const probeStrip = el('div', { class: 'strip', id: 'probe-strip' });
  container.replaceChildren(...[el('div', { class: 'summary-slot' }), withCw ? el('div', { class: 'cloudwatch-slot' }) : null, options.actions ? actionsCard(options) : null, el('div', { class: 'grid' })].filter(Boolean));
  const weight = chart('weight', 'Weight on the new side', "Step chart of the weight in effect; dashed lines are the plan's steps.", {
    series: [...spanned([{ label: 'new side %', color: 'new', stepped: true, width: 2.5 }]), ...(withCw ? [cw('Weight', 'accent', { stepped: true })] : [])],
    lines: () => (current?.stepWeights ?? []).map((w, i) => ({ value: w, label: `step ${i + 1}: ${w} %`, color: 'muted' })),
    yMin: 0, yMax: 100, format: (v) => `${Math.round(v)} %`,
  });
  const e5 = chart('5xx', '5XX rate per window', 'New against old in the same window; dashed: the ceiling the judge tests the new side against.', {
    series: [...spanned([{ label: 'new', color: 'new', points: true }, { label: 'old', color: 'old', points: true }]), ...(withCw ? [cw('new', 'new'), cw('old', 'old')] : [])],
    lines: () => (current?.maxErrorRate !== undefined ? [{ value: current.maxErrorRate * 100, label: `ceiling ${pct(current.maxErrorRate)}`, color: 'limit' }] : []),
    format: (v) => `${v.toFixed(1)} %`, yFloor: 1,
  });
  const e4 = chart('4xx', '4XX rate per window', "The 4XX test is relative (new against old's rate): its evidence is in the judge's chart below.", {
    series: [...spanned([{ label: 'new', color: 'new', points: true }, { label: 'old', color: 'old', points: true }]), ...(withCw ? [cw('new', 'new'), cw('old', 'old')] : [])],
    format: (v) => `${v.toFixed(1)} %`, yFloor: 1,
  });
  const lat = chart('latency', 'Latency per window (p99)', "Dashed: the judge's slow line (old side's p99 + margin); the test compares the shares of requests slower than it.", {
    series: [
      ...spanned([{ label: 'new', color: 'new', points: true }, { label: 'old', color: 'old', points: true }, { label: 'slow line', color: 'limit', dash: [6, 4], stepped: true, width: 1.5 }]),
      ...(withCw ? [cw('new p99', 'new'), cw('old p99', 'old')] : []),
    ],
    format: (v) => `${Math.round(v)} ms`, yFloor: 10,
  });
  const ev = chart('evidence', "Judge's evidence (CUSUM)", 'Each test adds up log-likelihood ratios window by window; one that reaches the dashed limit rolls back; above half of it, the judge holds.', {
    series: [
      { label: '5XX', color: 'new' },
      { label: '4XX', color: 'accent' },
      { label: 'latency', color: 'old' },
      { label: '5XX ceiling', color: 'extra', dash: [3, 3] },
    ],
    lines: () => {
      const h = current?.evidence.at(-1)?.threshold;
      return h === undefined ? [] : [{ value: h, label: `rollback at ${h.toFixed(1)}`, color: 'limit' }, { value: h / 2, label: 'hold above', color: 'muted' }];
    },
    format: (v) => v.toFixed(1), yFloor: 1,
  });
  container.querySelector('.grid').append(
    el('section', { class: 'card', id: 'card-probes' }, el('h2', null, 'Probe verdicts'), el('p', { class: 'muted small' }, 'Keep-Alive probe runs per side; a larger mark is a desync or an inconclusive run.'), probeStrip, probePanel),
  );
  const cap = chart('capacity', 'Old side capacity', 'Units serving on the old side against its pin (dashed): no weight increase while it is below.', {
    series: [
      ...spanned([{ label: 'serving', color: 'old', stepped: true, width: 4 }, { label: 'pinned', color: 'limit', stepped: true, dash: [6, 4], width: 1.5 }]),
      ...(withCw ? [cw('OldCapacity', 'old', { stepped: true }), cw('PinnedCapacity', 'limit', { stepped: true })] : []),
    ],
    format: (v) => String(Math.round(v)), yFloor: 1,
  });
  const residualSlot = el('div', { class: 'residual-slot' });
  container.querySelector('.grid').append(residualSlot);
  container.append(
    el('section', { class: 'card', id: 'card-log' }, el('h2', null, 'Decision log'), el('label', { class: 'small' }, onlyChanges, ' only changes (hide holds)'), el('div', { class: 'scroll' }, logTable)),
  );

  function renderLog(view) {
    logTable.replaceChildren(decisionLog(view, onlyChanges.checked));
  }

  function showProbe(p) {
    probePanel.replaceChildren(
      el('strong', null, `${p.side} side · ${p.verdict} · ${clock(p.atMs)} UTC`),
      el('div', null, `${p.findings} finding${p.findings === 1 ? '' : 's'}${p.requests !== undefined ? ` · ${p.requests} answers, ${p.errors5xx} 5XX` : ''}`),
      el('pre', { class: 'findings' }, p.summary),
    );
  }

  function update(view) {
    current = view;
    const c = withCw ? view.cloudWatch : undefined;
    const cwTimes = c ? [...c.weight, ...c.capacity, ...c.minutes].map((p) => p.atMs) : [];
    const times = [...view.decisions.map((d) => d.atMs), ...view.windows.map((w) => w.atMs), ...view.probes.map((p) => p.atMs), ...cwTimes];
    timeRange.min = Math.min(...times) / 1000;
    timeRange.max = Math.max(timeRange.min + 1, Math.max(...times, view.state.updatedAtMs ?? 0) / 1000);
    container.querySelector('.summary-slot').replaceChildren(summaryCard(view));
    const sec = (xs) => xs.map((p) => p.atMs / 1000);
    const x100 = (v) => (v === null ? null : v * 100);
    // With CloudWatch, its series join each chart's own on one time axis (empty until a read).
    const join = (own, cloud) => (withCw ? joinTimes(own, cloud) : own);
    const minutes = c?.minutes ?? [];
    weight.update(join([sec(view.weight), view.weight.map((p) => p.weight)], [sec(c?.weight ?? []), (c?.weight ?? []).map((p) => p.weight)]));
    e5.update(join([sec(view.windows), view.windows.map((w) => x100(w.newRate5xx)), view.windows.map((w) => x100(w.oldRate5xx))], [sec(minutes), minutes.map((m) => x100(m.newRate5xx)), minutes.map((m) => x100(m.oldRate5xx))]));
    e4.update(join([sec(view.windows), view.windows.map((w) => x100(w.newRate4xx)), view.windows.map((w) => x100(w.oldRate4xx))], [sec(minutes), minutes.map((m) => x100(m.newRate4xx)), minutes.map((m) => x100(m.oldRate4xx))]));
    lat.update(
      join(
        [sec(view.windows), view.windows.map((w) => w.newLatencyMs), view.windows.map((w) => w.oldLatencyMs), view.windows.map((w) => w.slowThresholdMs)],
        [sec(minutes), minutes.map((m) => m.newLatencyMs), minutes.map((m) => m.oldLatencyMs)],
      ),
    );
    if (withCw) container.querySelector('.cloudwatch-slot').replaceChildren(cloudWatchCard(view) ?? '');
    ev.update([sec(view.evidence), ...['cusum5xx', 'cusum4xx', 'cusumSlow', 'cusumCeiling'].map((k) => view.evidence.map((e) => e[k]))]);
    const cwCapacity = c?.capacity ?? [];
    cap.update(join([sec(view.capacity), view.capacity.map((p) => p.current), view.capacity.map((p) => p.pinned)], [sec(cwCapacity), cwCapacity.map((p) => p.current), cwCapacity.map((p) => p.pinned)]));
    probeTimeline(probeStrip, view.probes, showProbe);
    const worst = view.probes.filter((p) => p.verdict === 'desync').at(-1);
    if (worst && !probePanel.dataset.shown) {
      probePanel.dataset.shown = 'desync';
      showProbe(worst);
    }
    residualSlot.replaceChildren(residualCard(view) ?? '');
    renderLog(view);
    if (options.actions) updateActions(container, view);
    document.title = `${view.state.status} · ${view.state.id} · Cutover`;
  }

  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    for (const c of charts) c.redraw();
    if (current) probeTimeline(probeStrip, current.probes, showProbe);
  });
  addEventListener('resize', () => current && probeTimeline(probeStrip, current.probes, showProbe));
  return { update };
}

const ACTIONS = {
  pause: { label: 'Pause', ask: 'Pause: the weight is held where it is until resume, abort or promote.' },
  resume: { label: 'Resume', ask: 'Resume: the current step bakes again from the start, then the migration goes on.' },
  promote: { label: 'Promote to 100 %', ask: 'Promote --full: the new side takes 100 % now, skipping the remaining steps (it still soaks).' },
  abort: { label: 'Abort (roll back)', ask: 'Abort: all traffic goes back to the old side now.', danger: true },
};

function actionsCard(options) {
  const result = el('p', { class: 'small', id: 'action-result', 'aria-live': 'polite' });
  const reason = el('input', { type: 'text', id: 'confirm-reason', maxlength: '500', placeholder: 'reason (kept in the event log)' });
  const question = el('p', { id: 'confirm-text' });
  const confirm = el('button', { type: 'submit', class: 'danger', id: 'confirm-yes', value: 'yes' }, 'Confirm');
  const dialog = el('dialog', { id: 'confirm' }, el('form', { method: 'dialog' }, question, reason, el('div', { class: 'buttons' }, el('button', { type: 'button', id: 'confirm-no', onclick: () => dialog.close('cancel') }, 'Cancel'), confirm)));
  let pending;
  dialog.addEventListener('close', async () => {
    if (dialog.returnValue !== 'yes' || !pending) {
      if (pending) result.textContent = `${pending}: cancelled, nothing sent`;
      pending = undefined;
      return;
    }
    const command = pending;
    pending = undefined;
    result.textContent = `Sending ${command}…`;
    try {
      const answer = await fetch(`/api/migrations/${encodeURIComponent(options.id)}/${command}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Cutover-Token': options.token },
        body: JSON.stringify({ reason: reason.value }),
      });
      const body = await answer.json();
      result.dataset.outcome = answer.ok ? 'applied' : 'refused';
      result.textContent = answer.ok
        ? `${command} applied: now ${body.status ?? '?'}${body.weight !== undefined ? ` at ${body.weight} %` : ''}.`
        : `${command} not applied: ${body.error?.message ?? body.refusal ?? answer.statusText}`;
    } catch (error) {
      result.dataset.outcome = 'failed';
      result.textContent = `${command} not sent: ${error.message}`;
    }
  });
  const buttons = Object.entries(ACTIONS).map(([command, a]) =>
    el('button', {
      type: 'button', class: a.danger ? 'danger' : '', 'data-command': command, disabled: READ_ONLY,
      onclick: () => {
        pending = command;
        question.textContent = `${a.ask} Migration ${options.id}.`;
        confirm.textContent = `Confirm ${command}`;
        reason.value = '';
        // A value left from the last opening must not count as this one's answer.
        dialog.returnValue = '';
        dialog.showModal();
      },
    }, a.label),
  );
  return el(
    'section', { class: 'card actions', id: 'actions' },
    el('div', { class: 'buttons' }, buttons),
    READ_ONLY ? el('p', { class: 'muted small', id: 'read-only' }, 'Read-only: this dashboard was started with --read-only and sends no commands.') : null,
    result, dialog,
  );
}

function updateActions(container, view) {
  const over = SETTLED.includes(view.state.status) || view.state.live === false;
  for (const button of container.querySelectorAll('#actions button[data-command]')) button.disabled = READ_ONLY || over;
}

// ---------------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------------

function start() {
  const report = document.getElementById('cutover-report');
  if (report) {
    const data = JSON.parse(report.textContent);
    probe.page = 'report';
    setConn(`report · ${new Date(data.generatedAtMs).toISOString().replace('T', ' ').slice(0, 19)} UTC`, 'static');
    main.replaceChildren();
    for (const view of data.views) {
      const section = el('div', { class: 'migration' });
      main.append(section);
      migrationPage(section, { actions: false, cloudWatch: view.state.source === 'aws' }).update(view);
      received(view);
    }
    return;
  }
  const token = takeToken();
  const match = /^\/migrations\/([^/]+)$/.exec(location.pathname);
  if (match) {
    const id = decodeURIComponent(match[1]);
    probe.page = 'migration';
    const api = `/api/migrations/${encodeURIComponent(id)}`;
    // The first view by a plain request: an unknown migration is a message, not a stream that fails.
    fetch(api).then(async (answer) => {
      const body = await answer.json();
      if (!answer.ok) {
        probe.page = 'error';
        setConn('not found', 'down');
        main.replaceChildren(el('section', { class: 'card', id: 'error' }, el('h1', null, 'No such migration'), el('p', null, body.error?.message ?? answer.statusText), el('p', null, el('a', { href: '/' }, '← all migrations'))));
        return;
      }
      const page = migrationPage(main, { actions: true, id, token, cloudWatch: body.state.source === 'aws' });
      main.prepend(el('p', { class: 'small back' }, el('a', { href: '/' }, '← all migrations')));
      received(body);
      page.update(body);
      follow(`${api}/stream`, page.update);
    });
    return;
  }
  probe.page = 'list';
  follow('/api/stream', (view) => {
    document.getElementById('where').textContent = view.source;
    main.replaceChildren(listPage(view));
  });
}

start();
