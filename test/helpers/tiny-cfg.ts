// Small darknet detectors for the training tests: a few BN leaky convs (and shortcuts), a 1x1
// head conv sized for the classes, one [yolo] layer. Each test names only what it varies. And the
// synthetic set they train on (TWO_SHAPES).
import type { SyntheticOptions } from '../../core/data/synthetic';

export type TinyLayer =
  /** A batch-normalised leaky conv (pad=1). */
  | { filters: number; size?: number; stride?: number }
  | { shortcut: number };

export interface TinyDetector {
  /** [net] keys besides width/height/channels (batch, learning_rate, augmentation…). */
  net?: Record<string, string | number>;
  width: number;
  height: number;
  layers: TinyLayer[];
  classes: number;
  /** Three anchors as w,h pairs. */
  anchors: [number, number][];
  /** Extra [yolo] keys (jitter, ignore_thresh, iou_normalizer…). */
  yolo?: Record<string, string | number>;
  /** The head conv's activation (logistic for new_coords=1). Default linear. */
  headActivation?: string;
}

/** The training keys most tests share: SGD with momentum and decay, a step at 80 of 100 batches. */
export const STEP_SCHEDULE = {
  momentum: 0.9, decay: 0.0005, learning_rate: 0.01, burn_in: 0, max_batches: 100, policy: 'steps', steps: 80, scales: 0.1,
} as const;

const keys = (o: Record<string, string | number>) => Object.entries(o).map(([k, v]) => `${k}=${v}`);

export function tinyDetectorCfg(d: TinyDetector): string {
  const sections = [['[net]', ...keys({ ...d.net, width: d.width, height: d.height, channels: 3 })]];
  for (const l of d.layers) {
    sections.push('shortcut' in l
      ? ['[shortcut]', `from=${l.shortcut}`, 'activation=linear']
      : ['[convolutional]', 'batch_normalize=1', `filters=${l.filters}`, `size=${l.size ?? 3}`, `stride=${l.stride ?? 1}`, 'pad=1', 'activation=leaky']);
  }
  sections.push(['[convolutional]', 'size=1', 'stride=1', 'pad=1', `filters=${3 * (d.classes + 5)}`, `activation=${d.headActivation ?? 'linear'}`]);
  sections.push(['[yolo]', 'mask=0,1,2', `anchors=${d.anchors.map(([w, h]) => `${w},${h}`).join(', ')}`, `classes=${d.classes}`, 'num=3', ...keys(d.yolo ?? {})]);
  return sections.map((s) => s.join('\n')).join('\n\n') + '\n';
}

/** generateSyntheticDataset options of the training tests: 64x64, one large circle or square. */
export const TWO_SHAPES = {
  width: 64, height: 64, classes: ['circle', 'square'], minObjects: 1, maxObjects: 1, minSize: 0.35, maxSize: 0.6,
} satisfies Partial<SyntheticOptions>;
