/**
 * The SVG chart `interprocess bench` writes beside each suite's JSON: one
 * panel of horizontal bars per figure the suite's table compares, one bar per
 * case, the ratio to the suite's baseline at each bar's end. Self-contained
 * (no script, no external font, image or link) so that it opens in any
 * browser, and plain enough to diff.
 */

/** Which family a bar belongs to: its colour. */
export type BarGroup = 'ours' | 'c' | 'builtin';

export interface Bar {
  /** The case's key (`socket`, `channel-sync`...): data-case on the bar. */
  key: string;
  label: string;
  group: BarGroup;
  /** Undefined: no bar (the case failed or was skipped; `note` says why). */
  value?: number;
  /** The ratio to the baseline, as printed at the bar's end (`52x`). */
  ratio?: string;
  baseline?: boolean;
  /** Said in place of the bar, or after it in red (a result that is wrong). */
  note?: string;
  /** Figures taken while other processes kept the CPUs busy: marked with a star. */
  busy?: boolean;
}

export interface Panel {
  /** Short id (`rtt`, `msgs`...): data-panel on the bars. */
  id: string;
  title: string;
  unit: string;
  /** Absent when neither is better (how often a lock changes hands). */
  better?: 'lower' | 'higher';
  /** What the ratio at each bar's end means. */
  ratioMeaning: string;
  bars: Bar[];
  /** Formats a value for the bar's end (default: 3 significant digits and the unit). */
  format?: (v: number) => string;
}

export interface Chart {
  title: string;
  /** Under the title: when, where, how. */
  lines: string[];
  /** The command that made the chart, shown as typed. */
  command: string;
  /** Set for --quick runs: said in the chart in orange. */
  warning?: string;
  legend: Array<{ group: BarGroup | 'baseline'; label: string }>;
  panels: Panel[];
  footnotes: string[];
}

const W = 1040;
const MARGIN = 24;
const LABEL_RIGHT = 330; // labels end here, right-aligned (room for about 42 characters)
const X0 = 342; // the axis starts here
const X1 = W - 210; // and ends here: the value and ratio text goes after the longest bar
const ROW = 26;
const BAR_H = 18;
const FONT = "system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', Helvetica, Arial, sans-serif";
const MONO = "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace";

const colours: Record<BarGroup | 'baseline', string> = {
  ours: '#2563eb',
  c: '#7c3aed',
  builtin: '#d97706',
  baseline: '#6b7280',
};

/** Text for an XML text node or attribute value; drops what XML 1.0 cannot hold. */
export function escapeXml(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/[\ud800-\udfff]/g, (c, i: number, s: string) => {
      // Keep a well-formed surrogate pair, drop a lone half (not a character XML can hold).
      const code = c.charCodeAt(0);
      if (code < 0xdc00) return /[\udc00-\udfff]/.test(s[i + 1] ?? '') ? c : '';
      return /[\ud800-\udbff]/.test(s[i - 1] ?? '') ? c : '';
    })
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** A number with about three significant digits, and thousands separators above 1000. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

/** Short tick labels: 1k, 10M, 0.1. */
function tickLabel(v: number): string {
  if (v === 0) return '0';
  const units: Array<[number, string]> = [[1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  for (const [size, suffix] of units) if (Math.abs(v) >= size) return `${trim(v / size)}${suffix}`;
  return trim(v);
}

function trim(v: number): string {
  return String(Number(v.toPrecision(3)));
}

interface Scale {
  log: boolean;
  x(v: number): number;
  ticks: number[];
}

/**
 * Log when the values span more than 20x (a socket at 80 us beside a Channel
 * at 1 us would otherwise be one long bar and one invisible one), else linear
 * from zero.
 */
export function scaleFor(values: number[]): Scale {
  const positive = values.filter((v) => Number.isFinite(v) && v > 0);
  const min = positive.length ? Math.min(...positive) : 1;
  const max = positive.length ? Math.max(...positive) : 1;
  const span = X1 - X0;
  if (max / min > 20) {
    const lo = Math.floor(Math.log10(min));
    let hi = Math.ceil(Math.log10(max));
    if (hi === lo) hi++;
    const ticks: number[] = [];
    for (let e = lo; e <= hi; e++) {
      ticks.push(10 ** e);
      if (hi - lo <= 2 && e < hi) ticks.push(2 * 10 ** e, 5 * 10 ** e);
    }
    ticks.sort((a, b) => a - b);
    return { log: true, ticks, x: (v) => X0 + ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * span };
  }
  const step = niceStep(max / 5);
  const top = Math.max(step, Math.ceil(max / step) * step);
  const ticks: number[] = [];
  for (let t = 0; t <= top + step / 2; t += step) ticks.push(Number(t.toPrecision(12)));
  return { log: false, ticks, x: (v) => X0 + (Math.max(0, v) / top) * span };
}

function niceStep(raw: number): number {
  if (!(raw > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

function text(x: number, y: number, content: string, attrs: Record<string, string | number> = {}): string {
  const a = Object.entries(attrs).map(([k, v]) => ` ${k}="${escapeXml(String(v))}"`).join('');
  return `<text x="${r(x)}" y="${r(y)}"${a}>${escapeXml(content)}</text>`;
}

const r = (v: number): string => String(Math.round(v * 10) / 10);

function panelSvg(panel: Panel, top: number): { svg: string; height: number } {
  const out: string[] = [];
  const values = panel.bars.map((b) => b.value).filter((v): v is number => v !== undefined);
  const scale = scaleFor(values);
  const format = panel.format ?? ((v: number) => `${formatNumber(v)} ${panel.unit}`);
  let y = top;
  out.push(text(MARGIN, y + 16, panel.title, { 'font-size': 16, 'font-weight': 'bold', fill: '#111827' }));
  const how = [panel.better && `${panel.better} is better`, scale.log && 'log scale', panel.ratioMeaning].filter(Boolean).join(' · ');
  out.push(text(MARGIN, y + 34, how, { 'font-size': 12, fill: '#4b5563' }));
  y += 46;
  const barsTop = y;
  const barsBottom = barsTop + panel.bars.length * ROW;
  // Grid first, bars over it.
  for (const t of scale.ticks) {
    const x = scale.x(t);
    out.push(`<line x1="${r(x)}" y1="${r(barsTop - 4)}" x2="${r(x)}" y2="${r(barsBottom)}" stroke="#e5e7eb" stroke-width="1"/>`);
    out.push(text(x, barsBottom + 16, tickLabel(t), { 'font-size': 11, fill: '#6b7280', 'text-anchor': 'middle' }));
  }
  out.push(`<line x1="${X0}" y1="${r(barsBottom)}" x2="${X1}" y2="${r(barsBottom)}" stroke="#9ca3af" stroke-width="1"/>`);
  const axis = `${panel.unit}${scale.log ? ' (log scale)' : ''}`;
  out.push(text(X1, barsBottom + 32, axis, { 'font-size': 11, fill: '#6b7280', 'text-anchor': 'end' }));
  panel.bars.forEach((bar, i) => {
    const rowTop = barsTop + i * ROW;
    const mid = rowTop + BAR_H / 2 + 4;
    const label = `${bar.label}${bar.busy ? ' *' : ''}`;
    out.push(text(LABEL_RIGHT, mid, label, { 'font-size': 13, 'text-anchor': 'end', fill: '#111827', ...(bar.baseline ? { 'font-weight': 'bold' } : {}) }));
    if (bar.value === undefined || !Number.isFinite(bar.value)) {
      out.push(text(X0 + 6, mid, bar.note ?? 'no figure', { 'font-size': 12, 'font-style': 'italic', fill: '#9ca3af', class: 'missing', 'data-case': bar.key }));
      return;
    }
    const end = Math.max(X0 + 2, scale.x(bar.value));
    const fill = bar.baseline ? colours.baseline : colours[bar.group];
    const stroke = bar.baseline ? ' stroke="#111827" stroke-width="1.5" stroke-dasharray="4 2"' : '';
    out.push(
      `<rect class="bar" data-case="${escapeXml(bar.key)}" data-panel="${escapeXml(panel.id)}" data-value="${bar.value}" x="${X0}" y="${r(rowTop)}" width="${r(end - X0)}" height="${BAR_H}" rx="2" fill="${fill}"${stroke}>` +
        `<title>${escapeXml(`${bar.label}: ${format(bar.value)}${bar.ratio ? `, ${bar.ratio}` : ''}`)}</title></rect>`,
    );
    const figure = `${format(bar.value)}${bar.ratio ? `  ·  ${bar.ratio}` : ''}${bar.baseline && bar.ratio ? ' (baseline)' : ''}`;
    out.push(text(end + 6, mid, figure, { 'font-size': 12, fill: '#111827', class: 'figure' }));
    if (bar.note) out.push(text(end + 6, mid + 12, bar.note, { 'font-size': 10, fill: '#dc2626' }));
  });
  return { svg: out.join('\n'), height: barsBottom + 44 - top };
}

/** The chart as a standalone SVG document. */
export function renderChart(chart: Chart): string {
  const body: string[] = [];
  let y = MARGIN;
  body.push(text(MARGIN, y + 20, chart.title, { 'font-size': 22, 'font-weight': 'bold', fill: '#111827' }));
  y += 32;
  for (const line of chart.lines) {
    body.push(text(MARGIN, y + 14, line, { 'font-size': 13, fill: '#374151' }));
    y += 19;
  }
  body.push(text(MARGIN, y + 14, `$ ${chart.command}`, { 'font-size': 12, 'font-family': MONO, fill: '#374151' }));
  y += 22;
  if (chart.warning) {
    body.push(text(MARGIN, y + 15, chart.warning, { 'font-size': 14, 'font-weight': 'bold', fill: '#c2410c' }));
    y += 24;
  }
  // Legend: a swatch and a word for each colour.
  let x = MARGIN;
  y += 6;
  for (const item of chart.legend) {
    const baseline = item.group === 'baseline';
    body.push(`<rect x="${x}" y="${y}" width="14" height="12" rx="2" fill="${colours[item.group]}"${baseline ? ' stroke="#111827" stroke-width="1.5" stroke-dasharray="4 2"' : ''}/>`);
    body.push(text(x + 20, y + 11, item.label, { 'font-size': 12, fill: '#374151' }));
    x += 20 + item.label.length * 6.6 + 24;
  }
  y += 30;
  for (const panel of chart.panels) {
    const p = panelSvg(panel, y);
    body.push(`<g class="panel" data-panel="${escapeXml(panel.id)}">\n${p.svg}\n</g>`);
    y += p.height + 14;
  }
  for (const note of chart.footnotes) {
    body.push(text(MARGIN, y + 12, note, { 'font-size': 11, fill: '#4b5563' }));
    y += 17;
  }
  const height = Math.ceil(y + MARGIN);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="${escapeXml(FONT)}">`,
    `<title>${escapeXml(chart.title)}</title>`,
    `<rect x="0" y="0" width="${W}" height="${height}" fill="#ffffff"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

// ---- the suites' results (bench/*.mjs --json-out) and their charts -------------

export interface Machine {
  cpus: number;
  model: string;
  platform: string;
  arch: string;
  kernel: string;
}

/** What every suite's JSON holds (lib.mjs saveJson), and what `interprocess bench` adds. */
export interface SuiteResults {
  date: string;
  node: string;
  machine?: Machine;
  quick?: boolean;
  /** The command that produced the file (added by `interprocess bench`). */
  command?: string;
}

interface Integrity {
  bad: number;
  received: number;
  sent: number;
  ok: boolean;
}

export interface ChannelRow {
  key: string;
  label: string;
  status: 'ok' | 'failed' | 'skipped';
  reason?: string;
  othersBusy?: number;
  rttMedianUs?: number;
  rttP99Us?: number;
  /** Times better than the socket (paired by run); absent without a socket figure. */
  rttRatio?: number;
  msgsPerSec?: number;
  msgsRatio?: number;
  integrity64?: Integrity;
  GBps?: number;
  gbpsRatio?: number;
  integrity1m?: Integrity;
  /** The ratio a target asks of this case, by column. */
  goals?: { rtt?: number; msgs?: number; gbps?: number };
}

export interface ChannelTarget {
  target: string;
  measured: string;
  met: string;
  value?: number;
  goal: number;
  higherIsBetter: boolean;
  ok: boolean | null;
}

export interface ChannelResults extends SuiteResults {
  runs: number;
  rounds: number;
  warmup: number;
  streamSeconds: number;
  summary: { baseline: string; rows: ChannelRow[] };
  targets: ChannelTarget[];
  /** The core-to-core round trip before each round (ns), and a sentence saying it (bench/peers/handoff.c). */
  handoffNs?: number[];
  handoffNote?: string;
}

export interface MutexResults extends SuiteResults {
  iterations?: number;
  perProcess?: number;
  uncontended: Array<{ key?: string; case: string; nsPerOp?: number; ratioToC?: number }>;
  contended: Array<{ key?: string; case: string; locksPerSec?: number; handoffsPerSec?: number; exact?: boolean; ratioToC?: number }>;
}

/** `52x`, `5.9x`, `0.31x`: as the suites' tables print ratios. */
export function formatRatio(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  return `${v >= 10 ? v.toFixed(0) : v.toFixed(v >= 1 ? 1 : 2)}x`;
}

/**
 * A ratio judged against a goal: rounded as formatRatio does unless the rounding
 * would seem to meet a goal it misses, or miss one it meets (14.6x shown as 15x).
 */
export function preciseRatio(v: number, goal: number, higherIsBetter = true): string {
  const met = higherIsBetter ? v >= goal : v <= goal;
  const honest = (text: string): boolean => (higherIsBetter ? parseFloat(text) >= goal : parseFloat(text) <= goal) === met;
  let text = formatRatio(v);
  for (let digits = 1; !honest(text) && digits <= 6; digits++) text = `${v.toFixed(digits)}x`;
  return text;
}

/** 2.92 M, 179 k: rates at a glance. */
export function formatRate(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(v >= 1e8 ? 0 : 2)} M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(v >= 1e5 ? 0 : 1)} k`;
  return formatNumber(v);
}

/** When, on what, with which Node: the first line under a chart's title. */
export function machineLine(res: SuiteResults): string {
  const when = res.date ? res.date.replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, ' UTC') : 'unknown date';
  const m = res.machine;
  const where = m ? `${m.cpus} CPU${m.cpus === 1 ? '' : 's'} (${m.model}) · ${m.platform} ${m.arch} ${m.kernel}` : 'unknown machine';
  return `${when} · ${where} · Node ${res.node}`;
}

const quickWarning = 'QUICK RUN (--quick): short runs for a smoke test; the figures are indicative only';

export function channelChart(res: ChannelResults): Chart {
  const rows = res.summary.rows;
  const group = (key: string): BarGroup => (key === 'c-c' ? 'c' : key.startsWith('channel') || key === 'node-c' ? 'ours' : 'builtin');
  const baseline = res.summary.baseline;
  const missing = (row: ChannelRow): string => (row.status === 'skipped' ? `skipped: ${row.reason ?? ''}` : `failed: ${row.reason ?? ''}`).slice(0, 90);
  const bars = (column: 'rtt' | 'msgs' | 'gbps', pick: (row: ChannelRow) => number | undefined, ratio: (row: ChannelRow) => number | undefined, integrity?: (row: ChannelRow) => Integrity | undefined): Bar[] =>
    rows.map((row) => {
      const bar: Bar = { key: row.key, label: row.label, group: group(row.key), baseline: row.key === baseline, busy: (row.othersBusy ?? 0) >= 0.1 };
      if (row.status !== 'ok') return { ...bar, note: missing(row) };
      const i = integrity?.(row);
      const r = ratio(row);
      const goal = row.goals?.[column];
      return {
        ...bar,
        value: pick(row),
        ratio: r !== undefined && goal !== undefined ? preciseRatio(r, goal) : formatRatio(r),
        ...(i && !i.ok ? { note: `BAD: ${i.bad} wrong, ${i.received} of ${i.sent} received` } : {}),
      };
    });
  const vs = `ratio: times better than the ${baseline === 'socket' ? 'unix socket' : baseline} (baseline)${res.runs > 1 ? ', median over the runs' : ''}`;
  const panels: Panel[] = [
    {
      id: 'rtt', title: 'Round trip, 64-byte message (median)', unit: 'µs', better: 'lower', ratioMeaning: vs,
      bars: bars('rtt', (r) => r.rttMedianUs, (r) => r.rttRatio),
    },
    {
      id: 'msgs', title: 'Streaming 64-byte messages, one way', unit: 'msg/s', better: 'higher', ratioMeaning: vs,
      format: (v) => `${formatRate(v)} msg/s`,
      bars: bars('msgs', (r) => r.msgsPerSec, (r) => r.msgsRatio, (r) => r.integrity64),
    },
    {
      id: 'gbps', title: 'Streaming 1 MiB messages, one way', unit: 'GB/s', better: 'higher', ratioMeaning: vs,
      bars: bars('gbps', (r) => r.GBps, (r) => r.gbpsRatio, (r) => r.integrity1m),
    },
  ];
  const footnotes = ['GB = 1e9 bytes; msg/s = messages received / (last receive - first send).'];
  if (rows.some((r) => (r.othersBusy ?? 0) >= 0.1)) footnotes.push('* other processes kept the CPUs at least 10% busy just before this case: its figures may be low.');
  return {
    title: 'interprocess bench: Channel vs the alternatives',
    lines: [
      machineLine(res),
      `2 processes pinned to CPUs 0 and 1 (worker_threads: 1 process); ${res.rounds.toLocaleString('en')} timed round trips; ${res.streamSeconds} s of streaming per size; ${res.runs} run${res.runs === 1 ? '' : 's'} per case`,
    ],
    command: res.command ?? 'node bench/channel.mjs',
    ...(res.quick ? { warning: quickWarning } : {}),
    legend: [
      { group: 'ours', label: 'interprocess Channel' },
      { group: 'c', label: 'C over the Channel' },
      { group: 'builtin', label: 'Node built-ins' },
      { group: 'baseline', label: 'baseline (the ratios compare with it)' },
    ],
    panels,
    footnotes,
  };
}

export function mutexChart(res: MutexResults): Chart {
  const isC = (label: string): boolean => label.startsWith('C ');
  const bar = (row: { key?: string; case: string; ratioToC?: number }, value: number | undefined): Bar => ({
    key: row.key ?? row.case,
    label: row.case,
    group: isC(row.case) ? 'c' : 'ours',
    baseline: isC(row.case),
    ...(value === undefined ? { note: 'no figure' } : { value }),
    ...(row.ratioToC === undefined ? {} : { ratio: `${formatRatio(row.ratioToC)} C` }),
  });
  const panels: Panel[] = [];
  if (res.uncontended.length) {
    panels.push({
      id: 'uncontended', title: 'Uncontended lock + unlock, one process', unit: 'ns/op', better: 'lower',
      ratioMeaning: "ratio: time per operation over C's (baseline)",
      bars: res.uncontended.map((row) => bar(row, row.nsPerOp)),
    });
  }
  if (res.contended.length) {
    panels.push({
      id: 'contended', title: `Contended: two processes, each ${(res.perProcess ?? 0).toLocaleString('en')} x (lock, count, unlock)`,
      unit: 'lock+unlock/s', better: 'higher', ratioMeaning: "ratio: throughput over C's (baseline)",
      format: (v) => `${formatRate(v)}/s`,
      bars: res.contended.map((row) => ({ ...bar(row, row.locksPerSec), ...(row.exact === false ? { note: 'WRONG count: updates were lost' } : {}) })),
    });
    panels.push({
      id: 'handoffs', title: 'How often the lock changed hands between the two processes', unit: 'handoffs/s',
      ratioMeaning: 'more: fairer turns; fewer: longer runs by one side (often faster)',
      format: (v) => `${formatRate(v)}/s`,
      bars: res.contended.map((row) => ({ ...bar(row, row.handoffsPerSec), ratio: undefined })),
    });
  }
  return {
    title: 'interprocess bench: Mutex vs a C pthread mutex',
    lines: [machineLine(res), 'The same robust, process-shared pthread mutex, driven from Node (interprocess Mutex) and from C'],
    command: res.command ?? 'node bench/mutex.mjs',
    ...(res.quick ? { warning: quickWarning } : {}),
    legend: [
      { group: 'ours', label: 'interprocess Mutex (Node)' },
      { group: 'baseline', label: 'C, the baseline (the ratios compare with it)' },
    ],
    panels,
    footnotes: [],
  };
}
