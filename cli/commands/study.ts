// darkslim study: runs a compression study (a yaml of stages: train, sparsity-train, prune with a
// policy, fine-tune, distill, quantize, evaluate) and writes report.json, report.md and SVG plots.
// Finished stages are skipped when rerun; a half-done training stage continues from its checkpoint.
import { loadStudy, runStudy, studyTable } from '../../core/study';
import { eventToJsonLine, type TaskEvent } from '../../core/pipeline/events';
import { flagString, parseArgs, UsageError } from '../args';
import { stopOnSignals, type Command } from '../command';
import { humanReporter } from './train';

const USAGE = `Usage: darkslim study <study.yaml> [--out DIR] [--smoke] [--remeasure] [--json]

Runs the stages a study file declares (bench/studies/*.yaml; see core/study/schema.ts for the
format), each in its own folder under the study's work folder, then writes report.json (which the
extension's report panel opens), report.md and SVG plots (γ histograms, mAP, size and latency per
stage) in its report folder. Rerunning skips finished stages (their stage.done.json) and continues
a half-done training stage from its checkpoint.

Options:
  --out DIR   write the report here and the models under DIR/models (instead of the yaml's report: / work:)
  --smoke     every stage on a few images for one iteration (the yaml's smoke: settings): a pipeline
              check, written to --out or to <tmp>/darkslim-study-<name>-smoke
  --remeasure train nothing: measure every finished stage's latency again (on a quiet machine, after
              a run that shared it) and rewrite the report; every stage must have finished
  --json      stream JSON-lines events on stdout`;

export const studyCommand: Command = {
  name: 'study',
  summary: 'Run a compression study (stages from a yaml) and write its report',
  usage: USAGE,
  async run(argv) {
    const args = parseArgs(argv, { booleans: ['json', 'smoke', 'remeasure'], values: ['out'] });
    const [file, ...extra] = args.positional;
    if (!file) throw new UsageError('missing <study.yaml>');
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const spec = loadStudy(file);
    const json = args.flags.has('json');
    const stop = stopOnSignals('darkslim study: stopping (finished stages and checkpoints are kept; rerun to continue)');
    try {
      const report = await runStudy(spec, {
        outDir: flagString(args, 'out'), smoke: args.flags.has('smoke'), remeasure: args.flags.has('remeasure'), signal: stop.signal,
        onEvent: json ? (e) => process.stdout.write(eventToJsonLine(e)) : studyReporter(),
      });
      if (!json) {
        process.stdout.write(`\n${report.title}\n\n${studyTable(report)}\n\n`);
        for (const c of report.checks) process.stdout.write(`${c.met ? 'met   ' : 'MISSED'}  ${c.name}: ${c.value ?? '–'} (wanted ${c.target})\n`);
        process.stdout.write(`total ${(report.totalSeconds / 60).toFixed(1)} min; report: ${report.plots.map ? 'report.json, report.md, ' + Object.values(report.plots).join(', ') : 'report.json'}\n`);
      }
      return 0;
    } catch (e) {
      if (stop.signal.aborted) return 130;
      throw e;
    } finally {
      stop.release();
    }
  },
};

/** Study-level lines (stage started/skipped/done) plus the training progress bar of train.ts. */
function studyReporter(): (e: TaskEvent) => void {
  const training = humanReporter();
  const t0 = Date.now();
  const stamp = () => {
    const s = Math.round((Date.now() - t0) / 1000);
    return `[${String(Math.floor(s / 3600)).padStart(2, '0')}:${String(Math.floor(s / 60) % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}]`;
  };
  const tty = process.stderr.isTTY;
  const line = (s: string) => process.stderr.write((tty ? '\r\x1b[K' : '') + `${stamp()} ${s}\n`);
  return (e) => {
    if (e.task === 'study') {
      if (e.type === 'start') line(`study ${e.info.study}${e.info.smoke ? ' (smoke)' : ''}: ${e.total} stages (${e.info.stages}); ${e.info.train} train / ${e.info.eval} eval images; models in ${e.info.work}`);
      else if (e.type === 'log') line(`${e.level === 'warning' ? 'warning: ' : ''}${e.message}`);
      else if (e.type === 'done') line(`study done in ${e.seconds.toFixed(0)} s: ${e.outputs.report}`);
      return;
    }
    if (e.task === 'quantize') {
      if (e.type === 'start') line(`quantize: ${e.info.model}, ${e.info.method} calibration on ${e.info.calibration} images`);
      return;
    }
    if (e.type === 'start' || e.type === 'done' || e.type === 'eval' || e.type === 'log') {
      if (e.type === 'done') line(`${e.task} ${e.cancelled ? 'cancelled' : 'done'} in ${e.seconds.toFixed(0)} s`);
      else training(e);
      return;
    }
    training(e);
  };
}
