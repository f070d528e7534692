// DOM helpers and the page's text parts. Every value from a migration is set as text
// (textContent), never as HTML: probe findings carry raw server bytes.

/** An element with attributes and children (strings become text nodes). */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
  return node;
}

export function pct(share, digits = 1) {
  return share === null || share === undefined ? '–' : `${(share * 100).toFixed(digits)} %`;
}

export function clock(atMs) {
  return new Date(atMs).toISOString().slice(11, 19);
}

export function ago(atMs, now = Date.now()) {
  if (atMs === undefined) return '–';
  const s = Math.max(0, Math.round((now - atMs) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export function stepText(step, steps) {
  if (step === undefined) return '–';
  if (step < 0) return `before step 1${steps !== undefined ? `/${steps}` : ''}`;
  return `step ${step + 1}${steps !== undefined ? `/${steps}` : ''}`;
}

/** The status as a badge whose colour says good / bad / waiting / running. */
export function badge(status) {
  const tone =
    status === 'rolled-back' || status === 'damaged'
      ? 'bad'
      : status === 'paused'
        ? 'warn'
        : status === 'complete' || status === 'promoted' || status === 'torn-down'
          ? 'good'
          : 'run';
  return el('span', { class: `badge ${tone}`, 'data-status': status }, status);
}

export function weightBar(weight) {
  const bar = el('span', { class: 'bar', role: 'img', 'aria-label': `${weight ?? 0} % on the new side` }, el('span', { class: 'fill' }));
  bar.firstChild.style.width = `${Math.max(0, Math.min(100, weight ?? 0))}%`;
  return bar;
}

/** The list page: one row per migration. */
export function listPage(view) {
  const rows = view.migrations.map((m) =>
    el(
      'tr',
      { 'data-id': m.id },
      el('td', null, el('a', { href: `${migrationHref(m.id)}` }, m.id), m.key ? el('div', { class: 'muted small' }, m.key) : null),
      el('td', null, badge(m.status), m.live === true ? el('span', { class: 'live', title: 'a rehearsal is running it' }, ' ● live') : null),
      el('td', { class: 'num' }, weightBar(m.weight), ` ${m.weight ?? '–'} %`),
      el('td', null, stepText(m.step, m.steps)),
      el('td', { class: 'muted' }, ago(m.updatedAtMs)),
      el('td', { class: 'muted small' }, m.damage ?? m.note ?? ''),
    ),
  );
  return el(
    'section',
    { class: 'card list', id: 'list' },
    el('h1', null, 'Migrations'),
    el('p', { class: 'muted small' }, `${view.migrations.length} in ${view.source}`),
    view.migrations.length === 0
      ? el('p', null, 'No migration here yet. A rehearsal with --state-dir, or a deploy on AWS, creates one.')
      : el(
          'div',
          { class: 'scroll' },
          el(
            'table',
            null,
            el('thead', null, el('tr', null, ['Migration', 'Status', 'New side', 'Step', 'Updated', ''].map((h) => el('th', null, h)))),
            el('tbody', null, rows),
          ),
        ),
  );
}

export function migrationHref(id) {
  return `/migrations/${encodeURIComponent(id)}`;
}

/** The header card of a migration: status, weight, step, plan, the judge's latest word. */
export function summaryCard(view) {
  const s = view.state;
  const facts = [
    ['Status', [badge(s.status), s.status === 'paused' && s.pausedFrom ? ` from ${s.pausedFrom}` : '', s.live === true ? el('span', { class: 'live' }, ' ● rehearsal running') : s.live === false ? el('span', { class: 'muted' }, ' · its rehearsal stopped') : '']],
    ['New side', [el('strong', { class: 'big', id: 'weight' }, `${s.weight ?? '–'} %`), ' ', weightBar(s.weight)]],
    ['Step', stepText(s.step, s.steps)],
    ['Plan', s.plan ?? '–'],
    ['Judge', s.lastDecision ? [el('strong', null, s.lastDecision.action), `: ${s.lastDecision.reason} `, el('code', null, s.lastDecision.code)] : '–'],
    ['Old side', capacityText(s.oldCapacity)],
  ];
  if (s.pendingChange) facts.push(['Change', `${s.pendingChange.kind} ${s.pendingChange.fromWeight} % → ${s.pendingChange.weight} %, not seen in effect yet`]);
  if (s.damage) facts.push(['Damage', s.damage]);
  if (s.note) facts.push(['Note', s.note]);
  facts.push(['Updated', `${ago(s.updatedAtMs, view.builtAtMs)} (${s.updatedAtMs ? clock(s.updatedAtMs) : '–'} UTC)`]);
  return el(
    'section',
    { class: 'card summary', id: 'summary' },
    el('h1', { class: 'id' }, s.id),
    el('dl', null, facts.map(([k, v]) => [el('dt', null, k), el('dd', null, v)])),
  );
}

function capacityText(o) {
  if (!o) return '–';
  const pin = o.released ? 'released' : o.pinned === undefined ? 'not pinned yet' : o.pinned === 0 ? 'not managed' : `pinned at ${o.pinned}`;
  return `${pin}${o.restoring ? ', being restored' : ''}`;
}

/** The residual traffic after a rollback, in figures. */
export function residualCard(view) {
  const r = view.residual;
  if (!r) return null;
  const drained = r.drained ? `drained after ${((r.drainedAfterMs ?? 0) / 1000).toFixed(1)} s` : 'not drained: it still receives traffic';
  return el(
    'section',
    { class: 'card residual', id: 'residual' },
    el('h2', null, 'After the rollback'),
    el(
      'dl',
      null,
      el('dt', null, 'New side'),
      el('dd', null, drained),
      el('dt', null, 'Requests after'),
      el('dd', null, String(r.requestsAfterRollback)),
      el('dt', null, 'Wrong answers'),
      el('dd', null, `${r.wrongAnswersAfterRollback}${r.wrongAnswersBound ? ' (at most)' : ''}`),
      el('dt', null, 'Drain'),
      el('dd', null, r.activeDrain ? 'active (connections closed)' : 'passive (watched only)'),
    ),
  );
}

/** The decision log, newest first; holds can be hidden. */
export function decisionLog(view, onlyChanges) {
  const lines = view.decisions.filter((d) => !onlyChanges || d.type !== 'held').slice(-400).reverse();
  return el(
    'tbody',
    { id: 'decisions-body' },
    lines.map((d) =>
      el(
        'tr',
        { class: `t-${d.type}` },
        el('td', { class: 'muted' }, clock(d.atMs)),
        el('td', null, el('span', { class: `ev ${tone(d)}` }, d.type)),
        el('td', { class: 'num' }, `${d.weight} %`),
        el('td', null, d.reason, ' ', el('code', { class: 'muted' }, d.code)),
      ),
    ),
  );
}

function tone(d) {
  if (d.to === 'rolled-back' || d.type.includes('rollback') || d.type === 'rolled-back') return 'bad';
  if (d.type === 'held' || d.to === 'paused') return 'warn';
  if (d.type === 'advanced' || d.to === 'promoted' || d.to === 'complete') return 'good';
  return '';
}

const CLOUDWATCH_STATUS = {
  live: 'live',
  stale: 'stale: the last data is shown',
  'no-credentials': 'no credentials',
  unavailable: 'unavailable',
};

/**
 * What the page's CloudWatch series are (AWS only): when they were read, the period, what a read
 * costs, and, when the last read failed, why (a stale marker, not an error page).
 */
export function cloudWatchCard(view) {
  const c = view.cloudWatch;
  if (view.state.source !== 'aws') return null;
  if (!c) {
    return el('section', { class: 'card cloudwatch', id: 'cloudwatch', 'data-status': 'waiting' }, el('h2', null, 'CloudWatch'), el('p', { class: 'muted small' }, 'Read with the next refresh of this page.'));
  }
  const period = `${clock(c.fromMs)}–${clock(c.toMs)} UTC, per minute`;
  const facts = [
    ['Status', el('span', { class: `cw-status ${c.status}`, id: 'cloudwatch-status' }, CLOUDWATCH_STATUS[c.status] ?? c.status)],
    ['Read', c.readAtMs !== undefined ? `${ago(c.readAtMs, view.builtAtMs)} (${clock(c.readAtMs)} UTC)${c.pages > 1 ? `, ${c.pages} pages` : ''}` : 'not yet'],
    ['Period', period],
    ['Per read', `${c.metricsRequested} metrics (GetMetricData: $0.01 per 1,000)`],
  ];
  if (c.healthNote) facts.push(['Sides', c.healthNote]);
  const missing = c.missing.filter((id) => id !== 'ctl_residual_requests');
  if (c.readAtMs !== undefined && missing.length > 0) facts.push(['No data', missing.join(', ')]);
  if (c.partial) facts.push(['Partial', 'CloudWatch left data out of this read: the charts may have gaps']);
  return el(
    'section',
    { class: 'card cloudwatch', id: 'cloudwatch', 'data-status': c.status },
    el('h2', null, 'CloudWatch'),
    c.message ? el('p', { class: `cw-message ${c.status}`, id: 'cloudwatch-message' }, c.message) : null,
    el('dl', null, facts.map(([k, v]) => [el('dt', null, k), el('dd', null, v)])),
    el('p', { class: 'muted small' }, 'Dotted series in the charts are CloudWatch data; the others are the judge\'s decision evidence.'),
  );
}
