// Darknet's element-wise activations (AlexeyAB src/activations.h), in float64, for the constants
// that β compensation folds forward: a pruned channel outputs act(β) everywhere.

/** Activations that act on each element alone; the normalize_channels* family mixes channels. */
export function isElementwiseActivation(name: string): boolean {
  return !name.startsWith('normalize_channels');
}

function softplus(x: number): number {
  // darknet's softplus_activate with threshold 20
  if (x > 20) return x;
  if (x < -20) return Math.exp(x);
  return Math.log(Math.exp(x) + 1);
}

const logistic = (x: number) => 1 / (1 + Math.exp(-x));

/** act(x) as darknet computes it for one element. Unknown names fall back to relu, as darknet does. */
export function activate(name: string, x: number): number {
  switch (name) {
    case 'linear': return x;
    case 'logistic': return logistic(x);
    case 'loggy': return 2 / (1 + Math.exp(-x)) - 1;
    case 'relu': return x > 0 ? x : 0;
    case 'relu6': return Math.min(Math.max(x, 0), 6);
    case 'elu': return x >= 0 ? x : Math.exp(x) - 1;
    case 'selu': return x >= 0 ? 1.0507 * x : 1.0507 * 1.6732 * (Math.exp(x) - 1);
    case 'gelu': return 0.5 * x * (1 + Math.tanh(0.797885 * x + 0.035677 * x * x * x));
    case 'relie': return x > 0 ? x : 0.01 * x;
    case 'ramp': return x * (x > 0 ? 1 : 0) + 0.1 * x;
    case 'leaky':
    case 'revleaky': return x > 0 ? x : 0.1 * x;
    case 'tanh': return Math.tanh(x);
    case 'plse':
      if (x < -4) return 0.01 * (x + 4);
      if (x > 4) return 0.01 * (x - 4) + 1;
      return 0.125 * x + 0.5;
    case 'stair': {
      const n = Math.floor(x);
      return n % 2 === 0 ? Math.floor(x / 2) : (x - n) + Math.floor(x / 2);
    }
    case 'hardtan': return x < -1 ? -1 : x > 1 ? 1 : x;
    case 'lhtan':
      if (x < 0) return 0.001 * x;
      if (x > 1) return 0.001 * (x - 1) + 1;
      return x;
    case 'mish': return x * Math.tanh(softplus(x));
    case 'swish': return x * logistic(x);
    case 'hard_mish':
      if (x > 0) return x;
      if (x > -2) return x * x / 2 + x;
      return 0;
    default: return x > 0 ? x : 0;
  }
}

/** darknet normalize_cpu: (x - mean) / sqrt(variance + .00001) */
export const BN_EPSILON = 0.00001;
