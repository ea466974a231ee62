// A labelled VOC-class set built from coco128 at test/bench time, for models trained on PASCAL VOC
// (MobileNetV2-YOLOv3-Nano): the coco128 images holding at least one object of the 20 VOC classes,
// their labels remapped to VOC ids (objects of other COCO classes dropped). Built in a temporary
// folder (images linked, or copied where links fail); nothing from the corpus enters the repository.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { corpusPath } from './corpus';

/** COCO names (coco128's spelling) → VOC names. */
export const COCO_TO_VOC: Readonly<Record<string, string>> = Object.freeze({
  person: 'person', car: 'car', bus: 'bus', bicycle: 'bicycle', motorcycle: 'motorbike', motorbike: 'motorbike',
  airplane: 'aeroplane', aeroplane: 'aeroplane', boat: 'boat', train: 'train', bird: 'bird', cat: 'cat', dog: 'dog',
  horse: 'horse', sheep: 'sheep', cow: 'cow', bottle: 'bottle', chair: 'chair', couch: 'sofa', sofa: 'sofa',
  'potted plant': 'pottedplant', pottedplant: 'pottedplant', 'dining table': 'diningtable', diningtable: 'diningtable',
  tv: 'tvmonitor', tvmonitor: 'tvmonitor',
});

export interface VocSet {
  /** The temporary folder (images/, labels/, voc.names, list.txt). */
  dir: string;
  /** Image list (one absolute path a line). */
  list: string;
  names: string[];
  images: number;
  boxes: number;
  /** Removes the folder. */
  cleanup(): void;
}

function lines(file: string): string[] {
  return readFileSync(file, 'utf8').split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.trim() !== '');
}

/** Builds the set; `vocNames` defaults to the VOC model's voc.names in the corpus. */
export function buildVocFromCoco(opts: { vocNames?: string[]; parent?: string } = {}): VocSet {
  const coco = corpusPath('datasets', 'coco128');
  const cocoNames = lines(join(coco, 'coco128.names'));
  const vocNames = opts.vocNames ?? lines(corpusPath('weights', 'MobileNetV2-YOLOv3-Nano-VOC', 'voc.names'));
  const vocId = new Map(vocNames.map((n, i) => [n, i]));
  const map = new Map<number, number>();
  cocoNames.forEach((n, i) => {
    const v = COCO_TO_VOC[n];
    if (v !== undefined && vocId.has(v)) map.set(i, vocId.get(v)!);
  });
  const dir = mkdtempSync(join(opts.parent ?? tmpdir(), 'darkslim-voc-'));
  try {
    mkdirSync(join(dir, 'images'));
    mkdirSync(join(dir, 'labels'));
    const imagesDir = join(coco, 'images', 'train2017');
    const labelsDir = join(coco, 'labels', 'train2017');
    const list: string[] = [];
    let boxes = 0;
    for (const file of readdirSync(imagesDir).filter((f) => /\.jpe?g$/i.test(f)).sort()) {
      const stem = basename(file).replace(/\.[^.]+$/, '');
      const label = join(labelsDir, `${stem}.txt`);
      if (!existsSync(label)) continue;
      const kept: string[] = [];
      for (const l of lines(label)) {
        const [cls, ...rest] = l.trim().split(/\s+/);
        const v = map.get(Number(cls));
        if (v !== undefined) kept.push([v, ...rest].join(' '));
      }
      if (kept.length === 0) continue;
      const image = join(dir, 'images', file);
      try {
        symlinkSync(join(imagesDir, file), image);
      } catch {
        copyFileSync(join(imagesDir, file), image);
      }
      writeFileSync(join(dir, 'labels', `${stem}.txt`), kept.join('\n') + '\n');
      list.push(image);
      boxes += kept.length;
    }
    writeFileSync(join(dir, 'voc.names'), vocNames.join('\n') + '\n');
    const listFile = join(dir, 'list.txt');
    writeFileSync(listFile, list.join('\n') + '\n');
    return { dir, list: listFile, names: vocNames, images: list.length, boxes, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
