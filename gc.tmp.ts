import { headTargets } from './core/engine/loss';
const cfg = { index: 0, classes: 2, allAnchors: [6, 6, 10, 12, 14, 10, 20, 20], mask: [2, 3], scaleXY: 1, ignoreThresh: 0.5, truthThresh: 1, iouThresh: 1, iouNormalizer: 1, clsNormalizer: 1, objNormalizer: 1, iouLoss: 'mse' as const, netW: 24, netH: 24 };
const raw = new Float32Array(4*4*2*7);
const t = { classId: 1, x: 1.5 / 4, y: 2.5 / 4, w: 20 / 24, h: 20 / 24 };
const r = headTargets(raw, [1, 4, 4, 14], cfg, [[t]]);
console.log(r.parts);
