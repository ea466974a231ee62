// The study's report: report.json (readable by the extension's report panel: `kind:
// 'darkslim-report'` with a `stages` list of name/params/sizeBytes/bflops/latencyMs/map, see
// webview/reportModel.ts), report.md and three SVG plots beside them (γ histograms before and after
// sparsity training, mAP per stage, size and latency per stage).
import { join, relative, sep } from 'node:path';
import { writeFileAtomic } from '../darknet/files';
import type { StudyRow } from './measure';
import type { CandidateRecord, GammaHist, MapPoint, StageRecord } from './runner';
import type { StudySpec } from './schema';
import { barChart, barChartGroup, COLORS, svgDocument } from './svg';

export interface StudyCheck {
  name: string;
  value: number | null;
  target: string;
  met: boolean;
  line: number;
}

export interface StudyReport {
  kind: 'darkslim-report';
  version: 1;
  title: string;
  study: string;
  yaml: string;
  description?: string;
  smoke: boolean;
  date: string;
  machine: { cpu: string; cores: number; os: string; node: string; loadStart: number[]; loadEnd: number[] };
  /** Sum over the stages of their work and measuring time (in the run that finished each). */
  totalSeconds: number;
  /** Wall time of the run that wrote this report. */
  runSeconds: number;
  /** Wall time from the first stage's start to this report, interrupted attempts and pauses included. */
  elapsedSeconds: number;
  ran: string[];
  skipped: string[];
  /** When `darkslim study --remeasure` last measured the latencies again (absent: as trained). */
  remeasuredAt?: string;
  data: {
    train: { source: string; images: number; boxes: number };
    eval: { source: string; images: number; boxes: number };
    calib: { images: number };
    names: string[];
    note?: string;
  };
  /** One row per model, in stage order (the panel's table). */
  stages: StudyRow[];
  details: Record<string, { type: string; seconds: number; measureSeconds: number; info: Record<string, unknown> }>;
  checks: StudyCheck[];
  plots: Record<string, string>;
  threads: number;
}

export interface ReportContext {
  reportDir: string;
  smoke: boolean;
  ran: string[];
  skipped: string[];
  runSeconds: number;
  elapsedSeconds: number;
  machine: StudyReport['machine'];
  data: Omit<StudyReport['data'], 'note'>;
}

/** "2: 0.810, 4: 0.850" — a training stage's evaluations in the stage notes. */
function mapTrailText(trail: MapPoint[]): string {
  return trail.map((p) => `${p.epoch}: ${p.map.toFixed(3)}`).join(', ');
}

/** The measured row of a stage output (`stage` or `stage.finetuned`). */
export function outputRow(records: Map<string, StageRecord>, ref: string): StudyRow | undefined {
  const [name, sub] = ref.split('.');
  const rec = records.get(name);
  if (!rec) return undefined;
  const rows = (rec.info as { outputRows?: Record<string, StudyRow> }).outputRows;
  return rows?.[sub ?? 'model'] ?? (sub ? undefined : rec.rows[0]);
}

const METRIC: Record<string, keyof StudyRow> = { bflops: 'bflops', size: 'sizeBytes', params: 'params', latency: 'latencyMs', map: 'map' };

function stageFrom(spec: StudySpec, records: Map<string, StageRecord>, stage: string): string | undefined {
  const s = spec.stages.find((x) => x.name === stage);
  if (!s) return undefined;
  if (s.type === 'quantize') return (records.get(stage)?.info.quantize as { from?: string } | undefined)?.from;
  if (s.type === 'model') return undefined;
  return s.from;
}

export function evaluateChecks(spec: StudySpec, records: Map<string, StageRecord>): StudyCheck[] {
  return spec.checks.map((c) => {
    const vsRef = c.vs === 'from' ? stageFrom(spec, records, c.stage) : c.vs;
    const a = outputRow(records, c.stage), b = vsRef ? outputRow(records, vsRef) : undefined;
    const key = METRIC[c.metric];
    const va = a?.[key] as number | null | undefined, vb = b?.[key] as number | null | undefined;
    const parts: string[] = [];
    let value: number | null = null, met = false;
    if (typeof va === 'number' && typeof vb === 'number') {
      const ratio = vb ? va / vb : NaN, diff = va - vb;
      met = true;
      if (c.maxRatio !== undefined) { parts.push(`≤ ${c.maxRatio}×`); met &&= ratio <= c.maxRatio; value = ratio; }
      if (c.minRatio !== undefined) { parts.push(`≥ ${c.minRatio}×`); met &&= ratio >= c.minRatio; value = ratio; }
      if (c.minDiff !== undefined) { parts.push(`≥ ${c.minDiff >= 0 ? '+' : ''}${c.minDiff}`); met &&= diff >= c.minDiff - 1e-9; value = diff; }
      if (c.maxDiff !== undefined) { parts.push(`≤ ${c.maxDiff >= 0 ? '+' : ''}${c.maxDiff}`); met &&= diff <= c.maxDiff + 1e-9; value = diff; }
    } else {
      parts.push('(not measured)');
    }
    const how = c.maxRatio !== undefined || c.minRatio !== undefined ? 'ratio' : 'difference';
    return {
      name: `${c.metric} of ${c.stage} vs ${vsRef ?? c.vs} (${how})`, value: value === null ? null : Math.round(value * 1e4) / 1e4,
      target: parts.join(', '), met, line: c.line,
    };
  });
}

function fmtBytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} MB` : `${(n / 1e3).toFixed(1)} kB`;
}
function fmtParams(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}k`;
}
function fmtTime(s: number): string {
  return s >= 3600 ? `${(s / 3600).toFixed(2)} h` : s >= 120 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(0)} s`;
}
const mdEsc = (t: string) => t.replace(/\|/g, '\\|');

export function writeStudyReport(spec: StudySpec, records: Map<string, StageRecord>, rc: ReportContext): StudyReport {
  const rows: StudyRow[] = [];
  const details: StudyReport['details'] = {};
  let total = 0;
  for (const s of spec.stages) {
    const rec = records.get(s.name);
    if (!rec) continue;
    rows.push(...rec.rows);
    total += rec.seconds + rec.measureSeconds;
    const { outputRows: _o, ...info } = rec.info as Record<string, unknown>;
    details[s.name] = { type: rec.type, seconds: Math.round(rec.seconds * 10) / 10, measureSeconds: Math.round(rec.measureSeconds * 10) / 10, info };
  }
  const remeasured = [...records.values()].map((r) => r.remeasuredAt).filter((d): d is string => !!d).sort();
  const report: StudyReport = {
    kind: 'darkslim-report', version: 1, title: spec.title + (rc.smoke ? ' (smoke run: pipeline check only)' : ''), study: spec.name,
    yaml: relative(spec.root, spec.file), description: spec.description, smoke: rc.smoke, date: new Date().toISOString(), machine: rc.machine,
    totalSeconds: Math.round(total * 10) / 10, runSeconds: Math.round(rc.runSeconds * 10) / 10, elapsedSeconds: Math.round(rc.elapsedSeconds), ran: rc.ran, skipped: rc.skipped,
    ...(remeasured.length ? { remeasuredAt: remeasured[remeasured.length - 1] } : {}),
    data: { ...rc.data, ...(spec.data.note ? { note: spec.data.note } : {}) },
    stages: rows, details, checks: evaluateChecks(spec, records), plots: {}, threads: spec.threads,
  };

  // plots
  const plots: Record<string, string> = {};
  const gamma = gammaPlot(spec, records);
  if (gamma) { writeFileAtomic(join(rc.reportDir, 'gamma.svg'), gamma); plots.gamma = 'gamma.svg'; }
  const labels = rows.map((r) => r.name);
  writeFileAtomic(join(rc.reportDir, 'map.svg'), barChart({
    title: 'mAP@0.5 per stage (eval split, darknet points 0)', categories: labels, yLabel: 'mAP@0.5',
    series: [{ name: 'mAP@0.5', color: COLORS[2], values: rows.map((r) => r.map) }], format: (v) => v.toFixed(3), width: Math.max(640, 70 * rows.length + 100),
  }));
  plots.map = 'map.svg';
  const w = Math.max(560, 60 * rows.length + 100);
  writeFileAtomic(join(rc.reportDir, 'size-latency.svg'), svgDocument(w, 760, [
    barChartGroup({ title: 'model file size per stage', categories: labels, yLabel: 'size (kB)', series: [{ name: 'size', color: COLORS[0], values: rows.map((r) => r.sizeBytes / 1e3) }], format: (v) => v.toFixed(0), width: w }, 0, 0),
    barChartGroup({ title: `latency per stage (onnxruntime, ${spec.threads} threads, median)`, categories: labels, yLabel: 'latency (ms)', series: [{ name: 'latency', color: COLORS[1], values: rows.map((r) => r.latencyMs) }], format: (v) => v.toFixed(2), width: w }, 0, 380),
  ]));
  plots.sizeLatency = 'size-latency.svg';
  report.plots = plots;

  // paths inside the project are written relative to it (the report is committed)
  const inRoot = spec.root.endsWith(sep) ? spec.root : spec.root + sep;
  writeFileAtomic(join(rc.reportDir, 'report.json'), JSON.stringify(report, (_k, v: unknown) => (typeof v === 'string' && v.startsWith(inRoot) ? relative(spec.root, v) : v), 2) + '\n');
  writeFileAtomic(join(rc.reportDir, 'report.md'), studyMarkdown(spec, report));
  return report;
}

function gammaPlot(spec: StudySpec, records: Map<string, StageRecord>): string | undefined {
  const sp = spec.stages.find((s) => s.type === 'sparsity' && records.get(s.name)?.info.gamma);
  if (!sp) return undefined;
  const g = records.get(sp.name)!.info.gamma as { before: GammaHist; after: GammaHist };
  const e = g.before.edges;
  const label = (i: number) => (i === e.length - 1 ? `≥ ${e[i]}` : i === 0 ? `< ${e[1]}` : `${e[i]}–${e[i + 1]}`);
  const pct = (h: GammaHist) => h.counts.map((c) => (h.count ? (100 * c) / h.count : 0));
  return barChart({
    title: `|γ| of the prunable channels before and after sparsity training (${sp.name})`, categories: e.map((_, i) => label(i)), yLabel: '% of prunable channels',
    series: [
      { name: `before (${(100 * g.before.sparsity).toFixed(1)}% < 0.01)`, color: COLORS[0], values: pct(g.before) },
      { name: `after (${(100 * g.after.sparsity).toFixed(1)}% < 0.01)`, color: COLORS[3], values: pct(g.after) },
    ],
    format: (v) => v.toFixed(0), width: 720,
  });
}

export function studyTable(report: StudyReport): string {
  const head = ['stage', 'params', 'size', 'BFLOPs', `latency (ORT ${report.threads} thr)`, 'mAP@0.5', 'time'];
  const body = report.stages.map((r) => [
    r.name, fmtParams(r.params), fmtBytes(r.sizeBytes), r.bflops.toFixed(4), r.latencyMs !== null ? `${r.latencyMs.toFixed(2)} ms` : '–',
    r.map !== null ? r.map.toFixed(4) : '–', fmtTime(r.seconds),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function studyMarkdown(spec: StudySpec, r: StudyReport): string {
  const out: string[] = [];
  out.push(`# ${r.title}`, '');
  if (r.description) out.push(r.description.trim(), '');
  out.push(`- Study file: \`${r.yaml}\`; run with \`darkslim study ${r.yaml}${r.smoke ? ' --smoke' : ''}\`.`);
  out.push(`- Date: ${r.date}. Machine: ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.os}, Node ${r.machine.node}; load average ${r.machine.loadStart.join(' / ')} at the start, ${r.machine.loadEnd.join(' / ')} at the end.`);
  out.push(`- Total time: ${fmtTime(r.totalSeconds)} (each stage's work and measurements, in the run that finished it); the run that wrote this report took ${fmtTime(r.runSeconds)}${r.skipped.length ? ` (stages finished earlier and skipped: ${r.skipped.join(', ')})` : ''}; ${fmtTime(r.elapsedSeconds)} of wall time since the first stage started (interrupted attempts included).`);
  out.push(`- Data: train ${r.data.train.images} images / ${r.data.train.boxes} boxes (\`${r.data.train.source}\`); evaluation ${r.data.eval.images} images / ${r.data.eval.boxes} boxes (\`${r.data.eval.source}\`); int8 calibration ${r.data.calib.images} images; classes: ${r.data.names.length > 8 ? `${r.data.names.length}` : r.data.names.join(', ')}.`);
  if (r.data.note) out.push(`- ${r.data.note.trim()}`);
  if (r.remeasuredAt) out.push(`- Latency measured again on ${r.remeasuredAt} (\`darkslim study --remeasure\`, nothing trained; each row's load is from then); mAP, sizes and times are from the runs that made the models.`);
  out.push('', `mAP@0.5: darknet's \`detector map\` procedure (thresh .005, NMS .45, area under the curve) on onnxruntime, on the evaluation split. Latency: onnxruntime, batch 1, ${r.threads} threads, median. Size: the model file (.weights; int8: the .onnx). Time: the stage's training / pruning / quantizing, measurements excluded. Load: the 1-minute load average when the row was measured (latency depends on it).`, '');
  out.push(`| stage | params | size | BFLOPs | latency (ORT, ${r.threads} threads) | mAP@0.5 | time | load | note |`, '|---|---|---|---|---|---|---|---|---|');
  for (const x of r.stages) {
    out.push(`| ${mdEsc(x.name)} | ${fmtParams(x.params)} | ${fmtBytes(x.sizeBytes)} | ${x.bflops.toFixed(4)} | ${x.latencyMs !== null ? x.latencyMs.toFixed(2) + ' ms' : '–'} | ${x.map !== null ? x.map.toFixed(4) : '–'} | ${fmtTime(x.seconds)} | ${x.load} | ${mdEsc(x.note ?? '')} |`);
  }
  if (r.checks.length) {
    out.push('', '## Checks', '', '| check | value | wanted | |', '|---|---|---|---|');
    for (const c of r.checks) out.push(`| ${mdEsc(c.name)} | ${c.value ?? '–'} | ${c.target} | ${c.met ? 'met' : '**missed**'} |`);
  }
  out.push('', '## Plots', '');
  if (r.plots.gamma) out.push(`![γ histograms](${r.plots.gamma})`, '');
  out.push(`![mAP per stage](${r.plots.map})`, '', `![size and latency per stage](${r.plots.sizeLatency})`, '');

  out.push('## Stages', '');
  for (const s of spec.stages) {
    const d = r.details[s.name];
    if (!d) continue;
    const info = d.info;
    const bits: string[] = [`work ${fmtTime(d.seconds)}, measuring ${fmtTime(d.measureSeconds)}`];
    const tr = info.training as { epochs?: number; iterations?: number; imagesPerSecond?: number; backend?: string; mapTrail?: MapPoint[] } | undefined;
    if (tr) bits.push(`${tr.epochs} epochs (${tr.iterations} iterations) at ${tr.imagesPerSecond} images/s on ${tr.backend}`);
    if (tr?.mapTrail) bits.push(`mAP after epoch ${mapTrailText(tr.mapTrail)}`);
    const cl = info.classes as { from: number; to: number; edits: number; copiedLayers: number; headConvs: number[]; head: string } | undefined;
    if (cl) bits.push(`classes ${cl.from} → ${cl.to} with the language server's quick fix (${cl.edits} edits); ${cl.copiedLayers} layers copied, head convs ${cl.headConvs.join(', ')} re-initialised (${cl.head === 'boxes' ? 'box and objectness rows kept from the source model, class rows fresh' : 'fresh'})`);
    out.push(`- **${s.name}** (${s.type}${'from' in s ? `, from ${Array.isArray(s.from) ? s.from.join(' / ') : s.from}` : ''}): ${bits.join('; ')}.`);
    const g = info.gamma as { before?: GammaHist; after?: GammaHist; trail?: { epoch: number; sparsity: number }[]; lambda?: number; schedule?: string } | undefined;
    if (g?.before && g.after) {
      out.push(`  Sparsity λ ${g.lambda} (${g.schedule}): prunable |γ| < 0.01 ${(100 * g.before.sparsity).toFixed(1)}% → ${(100 * g.after.sparsity).toFixed(1)}% of ${g.after.count}${g.trail?.length ? `; per epoch: ${g.trail.map((t) => `${t.epoch}: ${(100 * t.sparsity).toFixed(1)}%`).join(', ')}` : ''}.`);
    }
    const cands = info.candidates as CandidateRecord[] | undefined;
    if (cands) {
      const search = info.search as { reference: { stage: string; map: number }; tolerance: number; held: boolean } | undefined;
      if (search) out.push(`  Search: the largest percent whose mAP after fine-tuning stays within ${search.tolerance} of ${search.reference.stage} (${search.reference.map}); bisection over the percents, assuming mAP falls as the percent grows. ${search.held ? '' : '**No percent held**: the candidate with the best mAP after fine-tuning was used.'}`);
      const ch = info.chosen as { percent: number; layerKeep: number | null };
      out.push(`  Chosen: ${info.strategy} ${Math.round(ch.percent * 100)}%${ch.layerKeep !== null ? `, layer_keep ${ch.layerKeep}` : ''}.`, '');
      out.push('  | percent | layer_keep | removed channels | BFLOPs | mAP pruned | mAP fine-tuned | holds |', '  |---|---|---|---|---|---|---|');
      for (const c of cands) {
        out.push(`  | ${Math.round(c.percent * 1000) / 10}% | ${c.layerKeep ?? '–'} | ${c.removedChannels ?? '–'} | ${c.pruned?.bflops ?? '–'} | ${c.pruned?.map ?? '–'} | ${c.finetuned?.map ?? '–'} | ${c.error ? mdEsc(c.error.slice(0, 80)) : c.holds === undefined ? '' : c.holds ? 'yes' : 'no'} |`);
      }
      for (const c of cands) if (c.mapTrail) out.push(`  mAP of the ${Math.round(c.percent * 1000) / 10}% candidate during its fine-tune, after epoch ${mapTrailText(c.mapTrail)}.`);
      out.push('');
    }
    const q = info.quantize as { from: string; int8Bytes: number; floatOnnxBytes: number; floatWeightsBytes: number | null; int8Kernels: string; method: string; images: number } | undefined;
    if (q) out.push(`  int8 of ${q.from} (the best mAP among the candidates): ${fmtBytes(q.int8Bytes)} vs float ONNX ${fmtBytes(q.floatOnnxBytes)} (${(100 * q.int8Bytes / q.floatOnnxBytes).toFixed(1)}%)${q.floatWeightsBytes ? ` and float .weights ${fmtBytes(q.floatWeightsBytes)} (${(100 * q.int8Bytes / q.floatWeightsBytes).toFixed(1)}%)` : ''}; ${q.method} calibration on ${q.images} images; int8 kernels: ${q.int8Kernels || 'none'}.`);
  }
  out.push('', `Resuming: the models, checkpoints and per-stage logs (events.jsonl) are under the study's \`work\` folder; rerunning the command skips finished stages and continues a half-done training stage from its checkpoint.`, '');
  return out.join('\n');
}
