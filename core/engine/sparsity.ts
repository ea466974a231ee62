// Network slimming's sparsity training (Liu et al. 2017; METHOD.md §2): after each backward pass
// add λ·sign(γ) to the gradient of the BN scales of prunable convs. Schedules from the public repos:
//  * constant: λ throughout;
//  * decay:    λ for the first half of training, then λ·0.01 for every channel;
//  * topk:     λ for the first half; then the top-k fraction of channels by |γ| (global ranking,
//              recomputed each epoch) get λ·0.01 and the rest keep λ — the channels that will be kept
//              recover, the rest keep being pushed to zero (coldlarry/YOLOv3-complete-pruning's
//              "local" sparsity).
// `switchAt` moves the half-way point: topk with switchAt 0 pushes only the channels below the top-k
// from the first iteration, so the kept channels never shrink (the demo's schedule: a short stage
// with λ on every channel first shrinks the kept ones too, and the model cannot recover in time).
import * as tf from '@tensorflow/tfjs-core';
import type { ModelGraph } from '../darknet/types';
import { candidatePrunableConvs } from '../darknet/weights';
import { buildChannelGroups } from '../prune/groups';
import type { DarknetModel } from './model';

export type SparsitySchedule = 'constant' | 'decay' | 'topk';

export interface SparsityOptions {
  lambda: number;
  schedule: SparsitySchedule;
  /** topk: fraction of channels protected after half of training. Default 0.3. */
  topk?: number;
  /** decay/topk: fraction of training after which the late phase starts. Default 0.5 (the repos'
   *  "after 50% of epochs"); 0 gives topk's local sparsity from the first epoch. */
  switchAt?: number;
  /** topk: also protect each layer's largest |γ|, this fraction of its channels (rounded up), as
   *  pruning's layer_keep keeps them: a global ranking alone can push whole layers to zero (a
   *  residual branch's projection, whose γ are small everywhere). Default 0. */
  layerKeep?: number;
}

/** For each conv with BN, a 0/1 mask of the channels whose γ is prunable (decides a prunable group). */
export function prunableGammaMasks(graph: ModelGraph): Map<number, Float32Array> {
  const masks = new Map<number, Float32Array>();
  try {
    const groups = buildChannelGroups(graph);
    for (const g of groups.groups) {
      if (!g.prunable) continue;
      for (const m of g.members) {
        if (m.role !== 'decider') continue;
        const l = graph.layers[m.layer];
        let mask = masks.get(m.layer);
        if (!mask) { mask = new Float32Array(l.output[2]); masks.set(m.layer, mask); }
        mask[m.channel] = 1;
      }
    }
  } catch {
    for (const l of candidatePrunableConvs(graph)) masks.set(l.index, new Float32Array(l.output[2]).fill(1));
  }
  return masks;
}

export class SparsityRegularizer {
  private factors = new Map<number, Float32Array>();
  lambdaNow: number;

  constructor(private readonly model: DarknetModel, readonly masks: Map<number, Float32Array>, readonly opts: SparsityOptions) {
    this.lambdaNow = opts.lambda;
    this.update(0);
  }

  /** Recomputes the per-channel λ for `progress` (0..1 of training). Call at each epoch start. */
  update(progress: number): void {
    const { lambda, schedule } = this.opts;
    const late = progress >= (this.opts.switchAt ?? 0.5);
    this.factors.clear();
    if (schedule === 'topk' && late) {
      const all: number[] = [];
      const gammas = new Map<number, Float32Array>();
      for (const [i, mask] of this.masks) {
        const g = this.model.convs.get(i)?.gamma?.dataSync() as Float32Array | undefined;
        if (!g) continue;
        gammas.set(i, g);
        for (let k = 0; k < mask.length; k++) if (mask[k]) all.push(Math.abs(g[k]));
      }
      all.sort((a, b) => b - a);
      const k = Math.floor(all.length * (this.opts.topk ?? 0.3));
      const thr = k > 0 ? all[k - 1] : Infinity;
      const keep = this.opts.layerKeep ?? 0;
      for (const [i, mask] of this.masks) {
        const g = gammas.get(i);
        if (!g) continue;
        // this layer's own threshold: its ceil(layerKeep·n)-th largest |γ|
        const own: number[] = [];
        for (let c = 0; c < mask.length; c++) if (mask[c]) own.push(Math.abs(g[c]));
        own.sort((a, b) => b - a);
        const kl = Math.min(own.length, Math.ceil(keep * own.length - 1e-9));
        const layerThr = kl > 0 ? own[kl - 1] : Infinity;
        const f = new Float32Array(mask.length);
        for (let c = 0; c < mask.length; c++) {
          const a = Math.abs(g[c]);
          f[c] = mask[c] ? (a >= thr || a >= layerThr ? lambda * 0.01 : lambda) : 0;
        }
        this.factors.set(i, f);
      }
      this.lambdaNow = lambda;
      return;
    }
    const lam = schedule === 'decay' && late ? lambda * 0.01 : lambda;
    this.lambdaNow = lam;
    for (const [i, mask] of this.masks) this.factors.set(i, Float32Array.from(mask, (m) => m * lam));
  }

  /** grads[γ] += λ_c·sign(γ_c) for the prunable channels. */
  apply(grads: Map<tf.Variable, tf.Tensor>): void {
    for (const [i, f] of this.factors) {
      const gamma = this.model.convs.get(i)?.gamma;
      if (!gamma) continue;
      const g = grads.get(gamma);
      if (!g) continue;
      const ng = tf.tidy(() => tf.add(g, tf.mul(tf.sign(gamma), tf.tensor1d(f))));
      g.dispose();
      grads.set(gamma, ng);
    }
  }
}

export const GAMMA_EDGES = [0, 0.001, 0.005, 0.01, 0.05, 0.1, 0.2, 0.5, 1, 2];

/** Histogram of |γ| over the masked channels (last bin open-ended), sparsity (<0.01) and count. */
export function gammaHistogram(model: DarknetModel, masks: Map<number, Float32Array>): { edges: number[]; counts: number[]; sparsity: number; count: number } {
  const counts = new Array(GAMMA_EDGES.length).fill(0);
  let n = 0, small = 0, max = 0;
  for (const [i, mask] of masks) {
    const g = model.convs.get(i)?.gamma?.dataSync();
    if (!g) continue;
    for (let c = 0; c < mask.length; c++) {
      if (!mask[c]) continue;
      const a = Math.abs(g[c]);
      max = Math.max(max, a);
      n++;
      if (a < 0.01) small++;
      let b = GAMMA_EDGES.length - 1;
      while (b > 0 && a < GAMMA_EDGES[b]) b--;
      counts[b]++;
    }
  }
  return { edges: [...GAMMA_EDGES, Math.max(max, GAMMA_EDGES[GAMMA_EDGES.length - 1])], counts, sparsity: n ? small / n : 0, count: n };
}
