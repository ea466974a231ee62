// The training dashboard's data: task events folded into series (loss parts, learning rate,
// mAP per evaluation, γ histograms per epoch). Pure, bounded in size (long runs are thinned by
// averaging neighbours), and small enough to keep in the webview's saved state.
import type { TaskEvent } from '../core/pipeline/events';

export const MAX_POINTS = 4000;
/** Loss parts drawn in the loss chart, in this order, when present. */
/** Drawn in the loss chart when present: the parts of training's loss, and distillation's terms. */
export const LOSS_KEYS = ['loss', 'box', 'obj', 'cls', 'gtLoss', 'distill', 'distillFeat'];

export interface GammaSnapshot {
  step: number;
  epoch?: number;
  edges: number[];
  counts: number[];
  sparsity: number;
  count: number;
  lambda?: number;
}

export interface DashboardModel {
  task?: string;
  label?: string;
  info: Record<string, string | number | boolean>;
  /** Iterations with metrics, and one array per metric name (NaN where a metric was absent). */
  steps: number[];
  series: Record<string, number[]>;
  /** Points aggregated into each entry (thinning averages neighbours). */
  stride: number;
  evals: { step: number; epoch?: number; map: number; best?: boolean }[];
  gamma: GammaSnapshot[];
  progress?: { done: number; total: number; epoch?: number; eta?: number; rate?: number; message?: string };
  checkpoints: { kind: string; path: string; step: number }[];
  logs: string[];
  state: 'idle' | 'running' | 'done' | 'cancelled' | 'failed';
  error?: string;
  summary?: Record<string, number | string | boolean>;
  seconds?: number;
}

export function emptyDashboard(label?: string, task?: string): DashboardModel {
  return { label, task, info: {}, steps: [], series: {}, stride: 1, evals: [], gamma: [], checkpoints: [], logs: [], state: 'idle' };
}

/** Halves every series by averaging neighbouring points. */
function thin(m: DashboardModel): void {
  const half = (a: number[]) => {
    const out: number[] = [];
    for (let i = 0; i + 1 < a.length; i += 2) {
      const x = a[i], y = a[i + 1];
      out.push(Number.isNaN(x) ? y : Number.isNaN(y) ? x : (x + y) / 2);
    }
    if (a.length % 2) out.push(a[a.length - 1]);
    return out;
  };
  const steps: number[] = [];
  for (let i = 0; i < m.steps.length; i += 2) steps.push(m.steps[Math.min(m.steps.length - 1, i + 1)]);
  m.steps = steps;
  for (const k of Object.keys(m.series)) m.series[k] = half(m.series[k]);
  m.stride *= 2;
}

/** A new point is averaged into the last one until `stride` points have gone into it. */
function addMetrics(m: DashboardModel, step: number, values: Record<string, number>, pending: { n: number }): void {
  const keys = new Set([...Object.keys(m.series), ...Object.keys(values)]);
  if (m.stride > 1 && pending.n > 0 && pending.n < m.stride && m.steps.length) {
    const i = m.steps.length - 1;
    for (const k of keys) {
      const v = values[k];
      if (v === undefined || !Number.isFinite(v)) continue;
      const a = m.series[k] ?? (m.series[k] = new Array(m.steps.length).fill(NaN));
      a[i] = Number.isNaN(a[i]) ? v : (a[i] * pending.n + v) / (pending.n + 1);
    }
    m.steps[i] = step;
    pending.n++;
    return;
  }
  for (const k of keys) {
    const a = m.series[k] ?? (m.series[k] = new Array(m.steps.length).fill(NaN));
    const v = values[k];
    a.push(v !== undefined && Number.isFinite(v) ? v : NaN);
  }
  m.steps.push(step);
  pending.n = 1;
  if (m.steps.length > MAX_POINTS) { thin(m); pending.n = m.stride; }
}

const pendings = new WeakMap<DashboardModel, { n: number }>();

export function applyEvent(m: DashboardModel, e: TaskEvent): DashboardModel {
  let pending = pendings.get(m);
  if (!pending) { pending = { n: 0 }; pendings.set(m, pending); }
  switch (e.type) {
    case 'start':
      m.task = e.task;
      m.info = { ...e.info };
      m.state = 'running';
      m.progress = { done: 0, total: e.total };
      break;
    case 'progress':
      m.progress = { done: e.done, total: e.total, epoch: e.epoch, eta: e.eta, rate: e.rate, message: e.message };
      if (m.state === 'idle') m.state = 'running';
      break;
    case 'metrics':
      addMetrics(m, e.step, e.values, pending);
      break;
    case 'eval':
      if (e.map !== undefined) m.evals.push({ step: e.step, epoch: e.epoch, map: e.map, best: e.best });
      break;
    case 'gamma':
      m.gamma.push({ step: e.step, epoch: e.epoch, edges: e.edges, counts: e.counts, sparsity: e.sparsity, count: e.count, lambda: e.lambda });
      if (m.gamma.length > 400) m.gamma = m.gamma.filter((_, i) => i % 2 === 0 || i === m.gamma.length - 1);
      break;
    case 'checkpoint':
      m.checkpoints.push({ kind: e.kind, path: e.path, step: e.step });
      if (m.checkpoints.length > 50) m.checkpoints.splice(0, m.checkpoints.length - 50);
      break;
    case 'log':
      m.logs.push(`${e.level}: ${e.message}`);
      if (m.logs.length > 100) m.logs.splice(0, m.logs.length - 100);
      break;
    case 'done':
      m.state = e.cancelled ? 'cancelled' : 'done';
      m.summary = e.summary;
      m.seconds = e.seconds;
      break;
    case 'error':
      m.state = 'failed';
      m.error = e.message;
      break;
  }
  return m;
}

export function applyEvents(m: DashboardModel, events: readonly TaskEvent[]): DashboardModel {
  for (const e of events) applyEvent(m, e);
  return m;
}

/** The metric names to draw in the loss chart: the loss parts first, then any other non-lr series. */
export function lossKeys(m: DashboardModel): string[] {
  const present = Object.keys(m.series).filter((k) => m.series[k].some((v) => Number.isFinite(v)));
  const known = LOSS_KEYS.filter((k) => present.includes(k));
  return known.length ? known : present.filter((k) => k !== 'lr' && k !== 'ms');
}

/** "12.4% of 3,210 |γ| below 0.01 at epoch 3 (λ 0.001)" for a snapshot. */
export function describeGamma(g: GammaSnapshot): string {
  return `${(g.sparsity * 100).toFixed(1)}% of ${g.count.toLocaleString('en-US')} |γ| below 0.01${g.epoch !== undefined ? ` at epoch ${g.epoch.toFixed(1)}` : ''}${g.lambda !== undefined ? ` (λ ${g.lambda})` : ''}`;
}

export function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}h ${String(m).padStart(2, '0')}m` : m ? `${m}m ${String(r).padStart(2, '0')}s` : `${r}s`;
}
