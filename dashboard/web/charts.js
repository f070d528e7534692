// The charts: uPlot (a global from its prebuilt file, uPlot.iife.min.js) for the time series, an
// SVG strip for the probe timeline. Colours come from the style sheet's custom properties, so
// light and dark mode need nothing here but a redraw.

const SVG = 'http://www.w3.org/2000/svg';

/** The style sheet's colours, read at draw time (they change with prefers-color-scheme). */
export function palette() {
  const cs = getComputedStyle(document.documentElement);
  const v = (name) => cs.getPropertyValue(name).trim();
  return { fg: v('--fg'), muted: v('--muted'), grid: v('--grid'), new: v('--new'), old: v('--old'), limit: v('--limit'), accent: v('--accent'), extra: v('--extra') };
}

/** The time range every chart shares, in seconds (uPlot's time unit), so that they line up. */
export const timeRange = { min: 0, max: 1 };

/**
 * One uPlot chart that follows its container's width.
 * spec: { title, unit, series: [{ label, color, dash, stepped, width, points, spanGaps }], lines: () => [{ value, label, color }], yMin, yMax, format }
 */
export class Chart {
  constructor(container, spec) {
    this.container = container;
    this.spec = spec;
    this.plot = undefined;
    this.data = undefined;
    this.observer = new ResizeObserver(() => this.resize());
    this.observer.observe(container);
  }

  update(data) {
    this.data = data;
    if (!this.plot) this.create();
    else this.plot.setData(data, true);
    this.container.dataset.points = String(data[0].length);
  }

  /** Drawn again from scratch (a colour scheme change). */
  redraw() {
    if (!this.data) return;
    this.plot?.destroy();
    this.plot = undefined;
    this.create();
  }

  resize() {
    if (this.plot) this.plot.setSize(this.size());
  }

  size() {
    const width = Math.max(240, Math.floor(this.container.clientWidth));
    return { width, height: width < 500 ? 170 : 210 };
  }

  create() {
    const p = palette();
    const spec = this.spec;
    const axis = { stroke: p.muted, grid: { stroke: p.grid, width: 1 }, ticks: { stroke: p.grid, width: 1 }, font: '11px system-ui, sans-serif' };
    const stepped = uPlot.paths.stepped({ align: 1 });
    const options = {
      ...this.size(),
      pxAlign: 0,
      // UTC, as the decision log and the CLI show times.
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      cursor: { points: { size: 6 } },
      legend: { live: true },
      scales: {
        x: { time: true, range: () => [timeRange.min, timeRange.max] },
        y: { range: (u, min, max) => [spec.yMin ?? Math.min(0, min ?? 0), Math.max(spec.yMax ?? 0, (max ?? 0) * 1.1, ...(spec.lines?.() ?? []).map((l) => l.value * 1.15), spec.yFloor ?? 1e-9)] },
      },
      axes: [
        { ...axis, space: 60 },
        { ...axis, size: 64, values: (u, vals) => vals.map((v) => (spec.format ? spec.format(v) : String(v))) },
      ],
      series: [
        { value: (u, v) => (v === null || v === undefined ? '–' : new Date(v * 1000).toISOString().slice(11, 19)) },
        ...spec.series.map((s) => ({
          label: s.label,
          stroke: p[s.color] || s.color,
          width: s.width ?? 2,
          dash: s.dash,
          // Two sources on one time axis (the judge's windows, CloudWatch's minutes) leave nulls
          // between each other's points: such series span them.
          spanGaps: s.spanGaps ?? false,
          points: { show: s.points ?? false, size: 5, fill: p[s.color] || s.color },
          value: (u, v) => (v === null || v === undefined ? '–' : spec.format ? spec.format(v) : String(v)),
          ...(s.stepped ? { paths: stepped } : {}),
        })),
      ],
      hooks: { draw: [(u) => drawLines(u, spec.lines?.() ?? [], p)] },
    };
    this.plot = new uPlot(options, this.data, this.container);
  }
}

/** Horizontal reference lines (the plan's steps, the judge's limits), dashed and labelled. */
function drawLines(u, lines, p) {
  const ctx = u.ctx;
  ctx.save();
  ctx.font = `${Math.round(10 * devicePixelRatio)}px system-ui, sans-serif`;
  ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
  ctx.lineWidth = devicePixelRatio;
  for (const line of lines) {
    const y = Math.round(u.valToPos(line.value, 'y', true));
    if (y < u.bbox.top - 1 || y > u.bbox.top + u.bbox.height + 1) continue;
    const colour = p[line.color] || line.color || p.limit;
    ctx.strokeStyle = colour;
    ctx.beginPath();
    ctx.moveTo(u.bbox.left, y);
    ctx.lineTo(u.bbox.left + u.bbox.width, y);
    ctx.stroke();
    if (line.label) {
      ctx.fillStyle = colour;
      ctx.textAlign = 'right';
      ctx.fillText(line.label, u.bbox.left + u.bbox.width - 4 * devicePixelRatio, y - 3 * devicePixelRatio);
    }
  }
  ctx.restore();
}

/**
 * The probe timeline: one row per side, one mark per probe run, coloured by verdict. A mark is a
 * button: its findings open in the panel below (as text).
 */
export function probeTimeline(container, probes, onSelect) {
  const width = Math.max(240, Math.floor(container.clientWidth));
  const rows = ['new', 'old'];
  const rowHeight = 28;
  const left = 40;
  const right = 10;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(rows.length * rowHeight + 20));
  svg.setAttribute('role', 'group');
  svg.setAttribute('aria-label', 'probe verdicts per side over time');
  const x = (atMs) => left + ((atMs / 1000 - timeRange.min) / Math.max(1e-9, timeRange.max - timeRange.min)) * (width - left - right);
  rows.forEach((side, i) => {
    const y = 14 + i * rowHeight;
    const label = document.createElementNS(SVG, 'text');
    label.setAttribute('x', '0');
    label.setAttribute('y', String(y + 4));
    label.setAttribute('class', `side ${side}`);
    label.textContent = side;
    const axis = document.createElementNS(SVG, 'line');
    axis.setAttribute('x1', String(left));
    axis.setAttribute('x2', String(width - right));
    axis.setAttribute('y1', String(y));
    axis.setAttribute('y2', String(y));
    axis.setAttribute('class', 'lane');
    svg.append(label, axis);
    for (const probe of probes.filter((p) => p.side === side)) {
      const mark = document.createElementNS(SVG, 'circle');
      mark.setAttribute('cx', String(Math.round(x(probe.atMs))));
      mark.setAttribute('cy', String(y));
      mark.setAttribute('r', probe.verdict === 'ok' ? '5' : '7');
      mark.setAttribute('class', `probe ${probe.verdict}`);
      mark.setAttribute('tabindex', '0');
      mark.setAttribute('role', 'button');
      mark.setAttribute('data-verdict', probe.verdict);
      const title = document.createElementNS(SVG, 'title');
      title.textContent = `${side}: ${probe.verdict} at ${new Date(probe.atMs).toISOString().slice(11, 19)}`;
      mark.append(title);
      const select = () => onSelect(probe);
      mark.addEventListener('click', select);
      mark.addEventListener('keydown', (e) => (e.key === 'Enter' || e.key === ' ') && select());
      svg.append(mark);
    }
  });
  container.replaceChildren(svg);
  container.dataset.points = String(probes.length);
}
