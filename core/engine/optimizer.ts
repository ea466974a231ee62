// Darknet's SGD (network.c update_network / convolutional_layer.c update_convolutional_layer):
// gradients summed over the batch and applied with learning_rate/batch; weight decay on conv
// weights only (decay·batch·w folded into the update, i.e. decay·w per image-mean gradient); momentum
// kept on the update. Equivalent to v = momentum·v + (g + decay·w), w -= lr·v with g the mean gradient.
// Learning rate policies from [net]: burn_in (lr·(i/burn_in)^power), steps/scales, poly, constant,
// exp; max_batches bounds training.
import * as tf from '@tensorflow/tfjs-core';
import { SectionOptions } from '../darknet/options';
import type { ModelGraph } from '../darknet/types';
import { sgdStep } from './kernels';
import { variableKey } from './model';

export interface SolverConfig {
  learningRate: number;
  momentum: number;
  decay: number;
  batch: number;
  subdivisions: number;
  burnIn: number;
  power: number;
  policy: 'steps' | 'step' | 'constant' | 'poly' | 'exp' | 'sigmoid' | 'random' | 'sgdr';
  steps: number[];
  scales: number[];
  step: number;
  scale: number;
  gamma: number;
  maxBatches: number;
}

export function solverConfig(graph: ModelGraph): SolverConfig {
  const net = graph.doc.sections[0];
  const o = net && net.type === 'net' ? new SectionOptions(net) : undefined;
  const policy = (o?.str('policy', 'constant') ?? 'constant') as SolverConfig['policy'];
  const steps = o?.ints('steps') ?? [];
  const scales = o?.floats('scales') ?? [];
  return {
    learningRate: o?.float('learning_rate', 0.001) ?? 0.001,
    momentum: o?.float('momentum', 0.9) ?? 0.9,
    decay: o?.float('decay', 0.0001) ?? 0.0001,
    batch: Math.max(1, graph.net.batch),
    subdivisions: Math.max(1, graph.net.subdivisions),
    burnIn: o?.int('burn_in', 0) ?? 0,
    power: o?.float('power', 4) ?? 4,
    policy,
    steps,
    scales: steps.map((_, i) => scales[i] ?? 1),
    step: o?.int('step', 1) ?? 1,
    scale: o?.float('scale', 1) ?? 1,
    gamma: o?.float('gamma', 1) ?? 1,
    maxBatches: o?.int('max_batches', 0) ?? 0,
  };
}

/** darknet get_current_rate() for iteration `i` (batch_num). */
export function learningRateAt(c: SolverConfig, i: number): number {
  if (i < c.burnIn) return c.learningRate * Math.pow(i / c.burnIn, c.power);
  switch (c.policy) {
    case 'constant': return c.learningRate;
    case 'step': return c.learningRate * Math.pow(c.scale, Math.floor(i / c.step));
    case 'steps': {
      let rate = c.learningRate;
      for (let k = 0; k < c.steps.length; k++) {
        if (c.steps[k] > i) break;
        rate *= c.scales[k];
      }
      return rate;
    }
    case 'exp': return c.learningRate * Math.pow(c.gamma, i);
    case 'poly': return c.learningRate * Math.pow(1 - i / Math.max(1, c.maxBatches), c.power);
    case 'sigmoid': return c.learningRate * (1 / (1 + Math.exp(c.gamma * (i - c.step))));
    default: return c.learningRate;
  }
}

/** Rescales step positions when max_batches is overridden (e.g. by --epochs). */
export function rescaleSteps(c: SolverConfig, maxBatches: number): SolverConfig {
  const old = c.maxBatches;
  const factor = old > 0 ? maxBatches / old : 1;
  return {
    ...c,
    maxBatches,
    steps: c.steps.map((s) => Math.max(1, Math.round(s * factor))),
    burnIn: Math.min(c.burnIn, Math.floor(maxBatches / 5)),
    step: Math.max(1, Math.round(c.step * factor)),
  };
}

export class Sgd {
  private readonly velocity = new Map<tf.Variable, tf.Variable>();

  constructor(private readonly momentum: number, private readonly decay: number, private readonly decayed: Set<tf.Variable>) {}

  /** Applies one update with learning rate `lr` from mean gradients. */
  apply(grads: Map<tf.Variable, tf.Tensor>, lr: number): void {
    tf.tidy(() => {
      for (const [v, g] of grads) {
        let vel = this.velocity.get(v);
        if (!vel) {
          vel = tf.variable(tf.zerosLike(v), false);
          this.velocity.set(v, vel);
        }
        const decay = this.decayed.has(v) && this.decay > 0 ? this.decay : 0;
        if (sgdStep(v, vel, g, lr, this.momentum, decay)) continue;
        const step = decay > 0 ? tf.add(g, tf.mul(v, decay)) : g;
        const nv = tf.add(tf.mul(vel, this.momentum), step);
        vel.assign(nv);
        v.assign(tf.sub(v, tf.mul(nv, lr)));
      }
    });
  }

  /** Velocity buffers (for checkpoints), by variable name. */
  state(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const [v, vel] of this.velocity) out.set(variableKey(v), Float32Array.from(vel.dataSync()));
    return out;
  }

  load(vars: tf.Variable[], state: Map<string, Float32Array>): void {
    for (const v of vars) {
      const s = state.get(variableKey(v));
      if (!s || s.length !== v.size) continue;
      this.velocity.get(v)?.dispose();
      this.velocity.set(v, tf.variable(tf.tensor(s, v.shape), false));
    }
  }

  dispose(): void {
    for (const v of this.velocity.values()) v.dispose();
    this.velocity.clear();
  }
}
