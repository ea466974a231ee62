// Locates ../shared/corpus (real darknet files written by others). Tests that need it skip with a
// clear message when it is absent; nothing from it is ever copied into the repository.
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { repoRoot } from './root';

export const CORPUS = resolve(repoRoot(), '..', 'shared', 'corpus');
export const HAS_CORPUS = existsSync(join(CORPUS, 'README.md'));
export const NO_CORPUS = HAS_CORPUS ? false : `corpus not found at ${CORPUS} (../shared/corpus): skipped`;

export function corpusPath(...parts: string[]): string {
  return join(CORPUS, ...parts);
}

/** Every network cfg of the corpus: AlexeyAB's cfg/ folder (and yolov1/) plus the cfgs beside trained weights. */
export function corpusCfgs(): string[] {
  if (!HAS_CORPUS) return [];
  const dirs = [corpusPath('cfg', 'alexeyab'), corpusPath('cfg', 'alexeyab', 'yolov1'),
    ...readdirSync(corpusPath('weights')).map((d) => corpusPath('weights', d))];
  return dirs.filter(existsSync).flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.cfg')).map((f) => join(d, f)));
}

export const WEIGHTS_MODELS = [
  { cfg: 'weights/yolo-fastest-1.1_coco/yolo-fastest-1.1.cfg', weights: 'weights/yolo-fastest-1.1_coco/yolo-fastest-1.1.weights' },
  { cfg: 'weights/yolo-fastest-1.1_coco/yolo-fastest-1.1-xl.cfg', weights: 'weights/yolo-fastest-1.1_coco/yolo-fastest-1.1-xl.weights' },
  { cfg: 'weights/MobileNetV2-YOLOv3-Nano-VOC/MobileNetV2-YOLOv3-Nano-voc.cfg', weights: 'weights/MobileNetV2-YOLOv3-Nano-VOC/MobileNetV2-YOLOv3-Nano-voc.weights' },
  { cfg: 'weights/yoloface-500k-v2/yoloface-500k-v2.cfg', weights: 'weights/yoloface-500k-v2/yoloface-500k-v2.weights' },
].map((m) => ({ cfg: corpusPath(m.cfg), weights: corpusPath(m.weights) }));
