import { loadCfg, loadWeightsFile, weightsBeside } from '../../core/darknet/files';
import { loadPruneConfigFile } from '../../core/prune/config';
import { STRATEGIES, type PruneStrategy } from '../../core/prune/policy';
import {
  defaultOutputPaths, formatPlan, pruneModel, prunedWeightsBytes, writePruneOutputs, type PruneOptions, type PruneOutputPaths,
} from '../../core/prune/prune';
import { flagString, parseArgs, UsageError, type ParsedArgs } from '../args';
import type { Command } from '../command';

const USAGE = `Usage: darkslim prune <cfg> <weights> [--percent P] [--strategy normal|shortcut|slim] [--layer-keep K]
                     [--shortcuts N] [--round-to N] [--exclude i,j] [--per-layer] [--no-compensation]
                     [--out DIR] [--dry-run] [--json]
       darkslim prune --config x.prune.yaml [options above override the file]

Network-slimming channel pruning over channel dependency groups (shortcut, route, grouped-route,
depthwise and scale_channels couplings), with β compensation, and optional layer pruning.

  --percent P        fraction (0-1) of the ranked BN |γ| to prune with one global threshold
  --strategy S       normal: never prune shortcut-coupled channels; shortcut: coupled channels follow
                     the group's first layer; slim (default): keep a coupled channel if any layer keeps it
  --layer-keep K     keep at least this fraction of every layer (lifts the percent_limit guard)
  --shortcuts N      also remove the N residual blocks with the lowest mean |γ| (layer pruning)
  --round-to N       round every pruned layer's kept channels up to a multiple of N (e.g. 8)
  --exclude i,j      conv layers to keep whole
  --per-layer        apply the percent inside each layer instead of globally
  --no-compensation  do not fold pruned channels' act(β) into their consumers
  --out DIR          output folder (default: beside the cfg); names <cfg>-pruned-<P>.cfg/.weights/.report.json
  --dry-run          print the plan (kept channels, params, BFLOPs per layer) and write nothing
  --json             print the result as JSON

A percent above the model's percent_limit (it would empty a layer) is refused unless --layer-keep is set.`;

function num(args: ParsedArgs, name: string): number | undefined {
  const v = flagString(args, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} expects a number, got "${v}"`);
  return n;
}

function int(args: ParsedArgs, name: string, min: number): number | undefined {
  const n = num(args, name);
  if (n !== undefined && (!Number.isInteger(n) || n < min)) throw new UsageError(`--${name} expects a whole number ≥ ${min}, got ${n}`);
  return n;
}

export const pruneCommand: Command = {
  name: 'prune',
  summary: 'Prune channels (network slimming, β compensation) and residual blocks; write cfg, weights, report',
  usage: USAGE,
  async run(argv) {
    const args = parseArgs(argv, {
      booleans: ['dry-run', 'json', 'per-layer', 'no-compensation'],
      values: ['config', 'percent', 'strategy', 'layer-keep', 'shortcuts', 'round-to', 'exclude', 'out'],
    });
    const configPath = flagString(args, 'config');
    let cfgPath: string;
    let weightsPath: string | undefined;
    let options: PruneOptions = { strategy: 'slim', percent: 0 };
    let configOutputs: Partial<PruneOutputPaths> & { dir?: string } = {};
    if (configPath) {
      if (args.positional.length) throw new UsageError('with --config, give no <cfg> <weights> (the file names them)');
      const c = loadPruneConfigFile(configPath);
      cfgPath = c.cfgPath; weightsPath = c.weightsPath; options = c.options; configOutputs = c.outputs;
    } else {
      const [c, w, ...extra] = args.positional;
      if (!c) throw new UsageError('missing <cfg>');
      if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
      cfgPath = c;
      weightsPath = w ?? weightsBeside(c);
      if (!weightsPath) throw new UsageError('missing <weights> (no .weights with the cfg\'s name beside it)');
    }
    const percent = num(args, 'percent');
    if (percent !== undefined) {
      if (percent < 0 || percent > 1) throw new UsageError(`--percent is a fraction between 0 and 1${percent > 1 && percent <= 100 ? ` (write ${percent / 100} for ${percent}%)` : ''}, got ${percent}`);
      options.percent = percent;
    }
    const strategy = flagString(args, 'strategy');
    if (strategy !== undefined) {
      if (!STRATEGIES.includes(strategy as PruneStrategy)) throw new UsageError(`--strategy must be one of ${STRATEGIES.join(', ')}, got "${strategy}"`);
      options.strategy = strategy as PruneStrategy;
    }
    const layerKeep = num(args, 'layer-keep');
    if (layerKeep !== undefined) {
      if (!(layerKeep > 0 && layerKeep <= 1)) throw new UsageError(`--layer-keep must be in (0, 1], got ${layerKeep}`);
      options.layerKeep = layerKeep;
    }
    const shortcuts = int(args, 'shortcuts', 0);
    if (shortcuts !== undefined) options.shortcuts = shortcuts;
    const roundTo = int(args, 'round-to', 1);
    if (roundTo !== undefined) options.roundTo = roundTo;
    const exclude = flagString(args, 'exclude');
    if (exclude !== undefined) {
      options.exclude = exclude.split(',').filter((s) => s.trim() !== '').map((s) => {
        const n = Number(s);
        if (!Number.isInteger(n) || n < 0) throw new UsageError(`--exclude expects layer indices like 12,36, got "${s}"`);
        return n;
      });
    }
    if (args.flags.has('per-layer')) options.perLayer = true;
    if (args.flags.has('no-compensation')) options.compensate = false;
    if (!options.percent && !options.shortcuts && !options.thresholds) {
      throw new UsageError('nothing to prune: give --percent (channel pruning) and/or --shortcuts (layer pruning)');
    }

    const graph = loadCfg(cfgPath);
    const loaded = loadWeightsFile(weightsPath, graph);
    if (!loaded.check.ok || loaded.check.partial) {
      throw new Error(`${weightsPath}: ${loaded.check.message}${loaded.check.partial ? ' Partial weights cannot be pruned.' : ''}`);
    }
    const dryRun = args.flags.has('dry-run');
    const run = pruneModel(graph, loaded.weights, options, { dryRun, cfgPath, weightsPath });
    const defaults = defaultOutputPaths(cfgPath, options, flagString(args, 'out') ?? configOutputs.dir);
    const outputs: PruneOutputPaths = {
      cfg: configOutputs.cfg ?? defaults.cfg,
      weights: configOutputs.weights ?? defaults.weights,
      report: configOutputs.report ?? defaults.report,
    };
    if (flagString(args, 'out')) Object.assign(outputs, defaults);
    if (!dryRun) {
      writePruneOutputs(outputs, { cfg: run.result.text, weights: prunedWeightsBytes(run), report: run.report }, [cfgPath, weightsPath, ...(configPath ? [configPath] : [])]);
    }
    if (args.flags.has('json')) {
      const json = { outputs: dryRun ? null : outputs, dryRun, ...run.report };
      process.stdout.write(JSON.stringify(json, null, 2) + '\n');
    } else {
      process.stdout.write(formatPlan(run.report) + '\n');
      if (dryRun) process.stdout.write('\ndry run: nothing written\n');
      else process.stdout.write(`\nwrote ${outputs.cfg}\n      ${outputs.weights}\n      ${outputs.report}\n`);
    }
    return 0;
  },
};
