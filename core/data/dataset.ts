// Darknet datasets: .data files, image lists, YOLO label files, PASCAL VOC xml, csv splits.
//
// Facts from AlexeyAB darknet: read_data_cfg / option_find (src/option_list.c), get_paths
// (src/data.c), replace_image_to_label (src/utils.c), read_boxes (src/data.c), and
// scripts/voc_label.py for the VOC → YOLO box conversion.

import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import type { MapTruth } from '../eval/map';

const f = Math.fround;

/** One ground-truth object, darknet style: centre and size relative to the image (0..1). */
export interface Truth {
  classId: number;
  x: number;
  y: number;
  w: number;
  h: number;
  /** VOC `<difficult>1</difficult>` (only set by the VOC / csv readers). */
  difficult?: boolean;
}

// ---------------------------------------------------------------------------------------------
// .data and .names

export interface DataFile {
  /** Absolute path of the .data file. */
  path: string;
  /** Every key = value, first occurrence wins (darknet option_find), values trimmed. */
  options: Record<string, string>;
  classes?: number;
  /** Resolved absolute paths (see resolveDataPath) of the usual keys, when present. */
  train?: string;
  valid?: string;
  names?: string;
  backup?: string;
  difficult?: string;
  /** `eval` value (voc / coco / imagenet), not a path. */
  eval?: string;
}

/**
 * Parse a darknet .data file. Lines are `key = value`; blank lines and lines starting with '#'
 * or ';' are skipped, lines without '=' are ignored (darknet prints an error and goes on).
 * Darknet strips ALL whitespace from each line (so paths cannot contain spaces); here only the
 * key and value are trimmed. `classes` is read like C atoi (leading integer).
 */
export function parseDataFile(file: string): DataFile {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = fs.readFileSync(abs, 'utf8');
  } catch (err) {
    throw new Error(`cannot read .data file: ${file}: ${errMessage(err)}`);
  }
  const options: Record<string, string> = {};
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '' || line[0] === '#' || line[0] === ';') continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (!(key in options)) options[key] = value;
  }
  const dir = path.dirname(abs);
  const out: DataFile = { path: abs, options };
  if (options.classes !== undefined) {
    const m = /^[+-]?\d+/.exec(options.classes);
    out.classes = m ? parseInt(m[0], 10) : 0;
  }
  for (const key of ['train', 'valid', 'names', 'backup', 'difficult'] as const) {
    const v = options[key];
    if (v !== undefined && v !== '') out[key] = resolveDataPath(v, dir);
  }
  if (options.eval !== undefined) out.eval = options.eval;
  return out;
}

/**
 * Resolve a path written in a .data file: as given (absolute, or relative to the current
 * directory, which is what darknet does), else relative to the .data file's folder, else relative
 * to that folder's parent (darknet repos keep .data files in cfg/ or data/ with paths relative to
 * the repository root). When nothing exists the cwd-relative path is returned.
 */
export function resolveDataPath(value: string, dataDir: string): string {
  if (path.isAbsolute(value)) return path.normalize(value);
  const candidates = [path.resolve(value), path.resolve(dataDir, value), path.resolve(dataDir, '..', value)];
  for (const c of candidates) if (fs.existsSync(c)) return c;
  return candidates[0];
}

/**
 * Read a .names file: one class name per line (CR stripped). Trailing blank lines are dropped
 * (darknet would count them as extra, empty names); other lines are kept verbatim.
 */
export function namesFrom(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read names file: ${file}: ${errMessage(err)}`);
  }
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  while (lines.length > 0 && lines[lines.length - 1].trim() === '') lines.pop();
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Image lists

/**
 * Read a darknet image list (one path per line, like train.txt / valid.txt) and return absolute
 * paths. Blank lines are skipped and entries trimmed. A listed path that does not exist (relative
 * to the current directory, as darknet reads it) is looked up relative to the list file's folder,
 * then by dropping leading path components one at a time relative to that folder — so coco128's
 * `data/images/train2017/x.jpg` resolves to `<coco128>/images/train2017/x.jpg`. Entries that
 * cannot be found are returned resolved against the current directory.
 */
export function readList(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read image list: ${file}: ${errMessage(err)}`);
  }
  const listDir = path.dirname(path.resolve(file));
  const resolver = new ListedPathResolver(listDir);
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const entry = raw.trim();
    if (entry === '') continue;
    out.push(resolver.resolve(entry));
  }
  return out;
}

/** Looks a listed path up: as given, in the list's folder, then with leading components dropped. */
class ListedPathResolver {
  constructor(private readonly listDir: string) {}

  resolve(entry: string): string {
    const asGiven = path.resolve(entry);
    if (fs.existsSync(asGiven)) return asGiven;
    const inListDir = path.resolve(this.listDir, entry);
    if (fs.existsSync(inListDir)) return inListDir;
    const parts = entry.split(/[\\/]+/).filter((p) => p !== '' && p !== '.');
    for (let k = 1; k < parts.length; ++k) {
      const c = path.resolve(this.listDir, ...parts.slice(k));
      if (fs.existsSync(c)) return c;
    }
    return asGiven;
  }
}

// ---------------------------------------------------------------------------------------------
// Label paths

function findReplace(s: string, orig: string, rep: string): string {
  const i = s.indexOf(orig);
  return i < 0 ? s : s.slice(0, i) + rep + s.slice(i + orig.length);
}

function replaceExtension(s: string, orig: string, rep: string): string {
  return s.endsWith(orig) ? s.slice(0, s.length - orig.length) + rep : s;
}

const DIR_RULES: ReadonlyArray<readonly [string, string]> = [
  ['/images/train2017/', '/labels/train2017/'],
  ['/images/val2017/', '/labels/val2017/'],
  ['/JPEGImages/', '/labels/'],
  ['\\images\\train2017\\', '\\labels\\train2017\\'],
  ['\\images\\val2017\\', '\\labels\\val2017\\'],
  ['\\images\\train2014\\', '\\labels\\train2014\\'],
  ['\\images\\val2014\\', '\\labels\\val2014\\'],
  ['/images/train2014/', '/labels/train2014/'],
  ['/images/val2014/', '/labels/val2014/'],
  ['\\JPEGImages\\', '\\labels\\'],
];

const IMAGE_EXTENSIONS_DARKNET = ['.jpg', '.JPG', '.jpeg', '.JPEG', '.png', '.PNG', '.bmp', '.BMP', '.ppm', '.PPM', '.tiff', '.TIFF'];

/**
 * AlexeyAB darknet replace_image_to_label(), exactly: replace the first occurrence of
 * /images/train2017/, /images/val2017/, /images/train2014/, /images/val2014/ (→ /labels/...) and
 * /JPEGImages/ (→ /labels/), also with backslashes; trim spaces/tabs; then replace a trailing
 * .jpg .JPG .jpeg .JPEG .png .PNG .bmp .BMP .ppm .PPM .tiff .TIFF with .txt. Any other extension
 * is left alone (darknet prints "Failed to infer label file name" and uses the path unchanged).
 * NB: AlexeyAB does NOT map a generic /images/ folder to /labels/ (pjreddie's darknet did); with
 * AlexeyAB labels normally sit beside the images. See labelPathCandidates() for the lenient form.
 */
export function labelPathFor(imagePath: string): string {
  let s = imagePath;
  for (const [from, to] of DIR_RULES) s = findReplace(s, from, to);
  s = s.replace(/^[ \t]+|[ \t]+$/g, '');
  for (const ext of IMAGE_EXTENSIONS_DARKNET) s = replaceExtension(s, ext, '.txt');
  return s;
}

/**
 * Where a YOLO label for `imagePath` may be, most darknet-like first: AlexeyAB's rule
 * (labelPathFor), then pjreddie's folder rule applied to the last `images` / `JPEGImages` / `raw`
 * path segment (→ `labels`), then beside the image; all with the extension replaced by .txt.
 * Only candidates ending in .txt are returned.
 */
export function labelPathCandidates(imagePath: string): string[] {
  const out: string[] = [];
  const push = (p: string) => {
    if (p.endsWith('.txt') && !out.includes(p)) out.push(p);
  };
  push(labelPathFor(imagePath));
  const txt = withExtension(imagePath, '.txt');
  const segs = txt.split(/([\\/])/); // keep separators
  for (let i = segs.length - 3; i >= 0; i -= 1) {
    if (segs[i] === 'images' || segs[i] === 'JPEGImages' || segs[i] === 'raw') {
      const copy = segs.slice();
      copy[i] = 'labels';
      push(copy.join(''));
      break;
    }
  }
  push(txt);
  return out;
}

function withExtension(p: string, ext: string): string {
  const base = path.basename(p);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? p.slice(0, p.length - (base.length - dot)) + ext : p + ext;
}

// ---------------------------------------------------------------------------------------------
// YOLO labels

/**
 * Read a darknet label file: lines `class x_center y_center width height`, relative to the image.
 * Returns null when the file does not exist (darknet treats it as an image without objects).
 * Values are rounded to float32 as darknet's fscanf("%f") stores them. Blank lines are ignored;
 * any other line must hold exactly five numbers with an integral, non-negative class id, else an
 * error naming the file and line is thrown (darknet silently stops reading at the first such line).
 */
export function readYoloLabels(file: string): Truth[] | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (isNotFound(err)) return null;
    throw new Error(`cannot read label file: ${file}: ${errMessage(err)}`);
  }
  return parseYoloLabels(text, file);
}

export function parseYoloLabels(text: string, file = '<labels>'): Truth[] {
  const out: Truth[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; ++i) {
    const line = lines[i].trim();
    if (line === '') continue;
    const tok = line.split(/\s+/);
    const nums = tok.map(Number);
    if (tok.length !== 5 || nums.some((n) => !Number.isFinite(n)) || !Number.isInteger(nums[0]) || nums[0] < 0) {
      throw new Error(`bad label line: ${file}:${i + 1}: expected "class x y w h", got "${line.length > 80 ? line.slice(0, 80) + '…' : line}"`);
    }
    out.push({ classId: nums[0], x: f(nums[1]), y: f(nums[2]), w: f(nums[3]), h: f(nums[4]) });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// PASCAL VOC

export interface VocOptions {
  /**
   * Objects whose class is not in `names`: 'skip' (darknet's voc_label.py), 'add' (append the name
   * to `names`, which is mutated), or 'error'. Default 'skip'.
   */
  unknown?: 'skip' | 'add' | 'error';
  /** Image size to use when the xml has no usable <size>. */
  imageSize?: { width: number; height: number };
}

export interface VocBox {
  name: string;
  xmin: number;
  ymin: number;
  xmax: number;
  ymax: number;
  difficult: boolean;
}

export interface VocAnnotation {
  filename?: string;
  width: number;
  height: number;
  objects: VocBox[];
}

/** Parse the parts of a VOC annotation darknet uses (size, object name / difficult / bndbox). */
export function parseVocXml(xml: string, file = '<xml>'): VocAnnotation {
  const sizeBlock = firstBlock(xml, 'size');
  const width = sizeBlock ? Number(firstText(sizeBlock, 'width')) : NaN;
  const height = sizeBlock ? Number(firstText(sizeBlock, 'height')) : NaN;
  const filename = firstText(xml, 'filename');
  const objects: VocBox[] = [];
  const objRe = /<object\b[^>]*>([\s\S]*?)<\/object>/g;
  let m: RegExpExecArray | null;
  while ((m = objRe.exec(xml))) {
    const body = m[1].replace(/<part\b[^>]*>[\s\S]*?<\/part>/g, ''); // person-layout parts
    const name = firstText(body, 'name');
    const bb = firstBlock(body, 'bndbox');
    if (name === undefined || bb === undefined) throw new Error(`bad VOC object in ${file}: missing <name> or <bndbox>`);
    const coords = ['xmin', 'ymin', 'xmax', 'ymax'].map((k) => Number(firstText(bb, k)));
    if (coords.some((v) => !Number.isFinite(v))) throw new Error(`bad VOC object in ${file}: non-numeric <bndbox> for "${name}"`);
    const diff = firstText(body, 'difficult');
    objects.push({
      name: decodeXml(name.trim()),
      xmin: coords[0],
      ymin: coords[1],
      xmax: coords[2],
      ymax: coords[3],
      difficult: diff !== undefined && parseInt(diff.trim(), 10) === 1,
    });
  }
  return { filename: filename === undefined ? undefined : decodeXml(filename.trim()), width, height, objects };
}

/**
 * VOC box (pixel corners) → darknet relative centre box, exactly as darknet's
 * scripts/voc_label.py convert(): x = ((xmin+xmax)/2 - 1)/W, y = ((ymin+ymax)/2 - 1)/H,
 * w = (xmax-xmin)/W, h = (ymax-ymin)/H (the -1 converts VOC's 1-based pixels).
 */
export function vocBoxToYolo(
  width: number,
  height: number,
  xmin: number,
  ymin: number,
  xmax: number,
  ymax: number,
): { x: number; y: number; w: number; h: number } {
  const dw = 1 / width;
  const dh = 1 / height;
  return {
    x: f(((xmin + xmax) / 2 - 1) * dw),
    y: f(((ymin + ymax) / 2 - 1) * dh),
    w: f((xmax - xmin) * dw),
    h: f((ymax - ymin) * dh),
  };
}

/**
 * Read a PASCAL VOC xml as truths (relative centre coords from the xml's <size>), class ids by
 * position in `names`. `difficult` objects are kept, flagged (voc_label.py drops them; darknet's
 * mAP can use them through the `difficult=` list — see splitDifficult()).
 */
export function readVocXml(file: string, names: string[], opts: VocOptions = {}): Truth[] {
  let xml: string;
  try {
    xml = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read VOC annotation: ${file}: ${errMessage(err)}`);
  }
  const ann = parseVocXml(xml, file);
  let { width, height } = ann;
  if (!(width > 0 && height > 0)) {
    if (opts.imageSize) ({ width, height } = opts.imageSize);
    else throw new Error(`VOC annotation has no usable <size>: ${file}`);
  }
  return vocObjectsToTruths(ann.objects, width, height, names, opts.unknown ?? 'skip', file);
}

function vocObjectsToTruths(
  objects: VocBox[],
  width: number,
  height: number,
  names: string[],
  unknown: 'skip' | 'add' | 'error',
  file: string,
): Truth[] {
  const out: Truth[] = [];
  for (const o of objects) {
    let id = names.indexOf(o.name);
    if (id < 0) {
      if (unknown === 'skip') continue;
      if (unknown === 'error') throw new Error(`unknown class "${o.name}" in ${file}`);
      id = names.length;
      names.push(o.name);
    }
    const b = vocBoxToYolo(width, height, o.xmin, o.ymin, o.xmax, o.ymax);
    const t: Truth = { classId: id, ...b };
    if (o.difficult) t.difficult = true;
    out.push(t);
  }
  return out;
}

function firstBlock(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}\\b[^>]*>([\\s\\S]*?)</${tag}>`).exec(xml);
  return m ? m[1] : undefined;
}

function firstText(xml: string, tag: string): string | undefined {
  const b = firstBlock(xml, tag);
  return b === undefined ? undefined : b.replace(/<!\[CDATA\[([\s\S]*?)\]\]>/g, '$1').trim();
}

function decodeXml(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(parseInt(d, 10)))
    .replace(/&#x([0-9a-fA-F]+);/g, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&amp;/g, '&');
}

// ---------------------------------------------------------------------------------------------
// Datasets

export interface DatasetItem {
  /** Absolute image path. */
  image: string;
  /** The annotation file the truths came from (.txt, .xml or the .csv), when one was found. */
  labelPath?: string;
  truths: Truth[];
  /** Set when the image file itself does not exist. */
  missingImage?: true;
}

export interface DatasetSummary {
  images: number;
  /** Images whose annotation file was found (an empty label file counts). */
  withLabels: number;
  /** Images without any annotation file (darknet: image without objects). */
  missingLabels: number;
  /** Total objects, difficult ones included. */
  boxes: number;
  /** Objects flagged difficult (VOC / csv only). */
  difficult: number;
  /** Listed images that do not exist on disk. */
  missingImages: number;
}

export interface Dataset {
  kind: 'data' | 'list' | 'folder' | 'csv';
  /** Absolute path of what was loaded. */
  source: string;
  names: string[] | undefined;
  items: DatasetItem[];
  summary: DatasetSummary;
  /** Non-fatal problems (class ids beyond the names, ...), at most 100. */
  warnings: string[];
}

export interface LoadDatasetOptions {
  /** Class names (wins over any .names file). */
  names?: string[];
  /** A .names file to read the class names from. */
  namesFile?: string;
  /** For .data specs: which list to use. Default 'valid' (falling back to 'train', as darknet). */
  split?: 'valid' | 'train';
  /** For folder specs: scan sub-folders too. Default: only when the folder holds no image. */
  recursive?: boolean;
}

const IMAGE_EXT_RE = /\.(jpe?g|png|bmp|ppm|tiff?|webp)$/i;

/** Is this a file name darknet-style tools treat as an image? */
export function isImagePath(p: string): boolean {
  return IMAGE_EXT_RE.test(p);
}

/**
 * Load a dataset from `spec`:
 *  - a darknet `.data` file: the `valid` list (falling back to `train`), names from `names`;
 *  - an image list file (.txt / .list / anything not .data): see readList();
 *  - a folder of images (or a folder with an `images/` sub-folder).
 * For each image the annotation is looked up with labelPathCandidates() (YOLO .txt), then as VOC
 * xml named after the image in an `annotations` / `Annotations` folder beside the image folder,
 * or beside the image. Without any, the image has no objects and is counted in missingLabels.
 * Names come from options, the .data file, or a lone `*.names` file in the list / dataset folder;
 * for VOC data without names, class names are collected in order of first appearance.
 */
export async function loadDataset(spec: string, opts: LoadDatasetOptions = {}): Promise<Dataset> {
  const abs = path.resolve(spec);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch (err) {
    throw new Error(`dataset not found: ${spec}: ${errMessage(err)}`);
  }
  let kind: Dataset['kind'];
  let images: string[];
  let names: string[] | undefined = opts.names ? opts.names.slice() : opts.namesFile ? namesFrom(opts.namesFile) : undefined;
  if (st.isDirectory()) {
    kind = 'folder';
    images = listImages(abs, opts.recursive);
    if (!names) names = findNamesNear([abs, path.dirname(abs)]);
  } else if (abs.toLowerCase().endsWith('.data')) {
    kind = 'data';
    const data = parseDataFile(abs);
    const list = opts.split === 'train' ? data.train : (data.valid ?? data.train);
    if (!list) throw new Error(`.data file has neither valid nor train: ${spec}`);
    images = readList(list);
    if (!names && data.names) names = namesFrom(data.names);
  } else if (abs.toLowerCase().endsWith('.csv')) {
    throw new Error(`csv specs need an image folder: use loadCsvSplit(csvPath, imagesDir): ${spec}`);
  } else {
    kind = 'list';
    images = readList(abs);
    if (!names) names = findNamesNear([path.dirname(abs)]);
  }

  const vocNames = names ?? [];
  const warnings = new Warnings();
  const items: DatasetItem[] = [];
  for (const image of images) {
    items.push(await loadItem(image, vocNames, names === undefined, warnings));
  }
  const finalNames = names ?? (vocNames.length > 0 ? vocNames : undefined);
  checkClassIds(items, finalNames, warnings);
  return { kind, source: abs, names: finalNames, items, summary: summarize(items), warnings: warnings.list };
}

async function loadItem(image: string, vocNames: string[], addUnknown: boolean, warnings: Warnings): Promise<DatasetItem> {
  const item: DatasetItem = { image, truths: [] };
  if (!fs.existsSync(image)) {
    item.missingImage = true;
    warnings.add(`image not found: ${image}`);
  }
  for (const candidate of labelPathCandidates(image)) {
    const truths = readYoloLabels(candidate);
    if (truths) {
      item.labelPath = candidate;
      item.truths = truths;
      return item;
    }
  }
  for (const xml of vocCandidates(image)) {
    if (!fs.existsSync(xml)) continue;
    const ann = parseVocXml(readText(xml, 'VOC annotation'), xml);
    let { width, height } = ann;
    if (!(width > 0 && height > 0)) {
      if (item.missingImage) throw new Error(`VOC annotation has no usable <size> and the image is missing: ${xml}`);
      const meta = await imageSize(image);
      ({ width, height } = meta);
    }
    item.labelPath = xml;
    item.truths = vocObjectsToTruths(ann.objects, width, height, vocNames, addUnknown ? 'add' : 'skip', xml);
    return item;
  }
  return item;
}

function vocCandidates(image: string): string[] {
  const dir = path.dirname(image);
  const stem = path.basename(image).replace(/\.[^.]*$/, '');
  const parent = path.dirname(dir);
  return [
    path.join(parent, 'annotations', stem + '.xml'),
    path.join(parent, 'Annotations', stem + '.xml'),
    path.join(dir, stem + '.xml'),
  ];
}

async function imageSize(image: string): Promise<{ width: number; height: number }> {
  try {
    const meta = await sharp(image, { autoOrient: true }).metadata();
    const width = meta.autoOrient?.width ?? meta.width;
    const height = meta.autoOrient?.height ?? meta.height;
    if (!width || !height) throw new Error('no size');
    return { width, height };
  } catch (err) {
    throw new Error(`cannot decode image: ${image}: ${errMessage(err)}`);
  }
}

export interface CsvSplitOptions {
  names?: string[];
}

/**
 * Load a csv split like raccoon's train_labels.csv / test_labels.csv: a header
 * `filename,width,height,class,xmin,ymin,xmax,ymax` (columns found by name, case-insensitive),
 * one row per object. Rows are grouped by filename (first-appearance order); image paths are
 * `imagesDir/filename`. Boxes are converted like VOC xml (voc_label.py), using the row's width and
 * height. Classes by `names`, or collected in order of first appearance.
 */
export function loadCsvSplit(csvPath: string, imagesDir: string, opts: CsvSplitOptions = {}): Dataset {
  const text = readText(csvPath, 'csv file');
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  const header = parseCsvLine(lines[0] ?? '').map((h) => h.trim().toLowerCase());
  const col = (name: string, fallback: number) => {
    const i = header.indexOf(name);
    return i >= 0 ? i : fallback;
  };
  const cFile = col('filename', 0);
  const cW = col('width', 1);
  const cH = col('height', 2);
  const cClass = col('class', 3);
  const cx0 = col('xmin', 4);
  const cy0 = col('ymin', 5);
  const cx1 = col('xmax', 6);
  const cy1 = col('ymax', 7);
  const names = opts.names ? opts.names.slice() : [];
  const collect = !opts.names;
  const byFile = new Map<string, DatasetItem>();
  const imagesAbs = path.resolve(imagesDir);
  const csvAbs = path.resolve(csvPath);
  const warnings = new Warnings();
  for (let i = 1; i < lines.length; ++i) {
    if (lines[i].trim() === '') continue;
    const cells = parseCsvLine(lines[i]);
    const filename = (cells[cFile] ?? '').trim();
    const nums = [cW, cH, cx0, cy0, cx1, cy1].map((c) => Number(cells[c]));
    if (filename === '' || nums.some((n) => !Number.isFinite(n)) || !(nums[0] > 0 && nums[1] > 0)) {
      throw new Error(`bad csv row: ${csvPath}:${i + 1}: "${lines[i]}"`);
    }
    let item = byFile.get(filename);
    if (!item) {
      const image = path.resolve(imagesAbs, filename);
      item = { image, labelPath: csvAbs, truths: [] };
      if (!fs.existsSync(image)) {
        item.missingImage = true;
        warnings.add(`image not found: ${image}`);
      }
      byFile.set(filename, item);
    }
    const cls = (cells[cClass] ?? '').trim();
    let id = names.indexOf(cls);
    if (id < 0) {
      if (!collect) continue; // not one of the requested classes (voc_label.py skips those)
      id = names.length;
      names.push(cls);
    }
    const b = vocBoxToYolo(nums[0], nums[1], nums[2], nums[3], nums[4], nums[5]);
    item.truths.push({ classId: id, ...b });
  }
  const items = [...byFile.values()];
  return {
    kind: 'csv',
    source: csvAbs,
    names: names.length > 0 || opts.names ? names : undefined,
    items,
    summary: summarize(items),
    warnings: warnings.list,
  };
}

function parseCsvLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; ++i) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"') {
        if (line[i + 1] === '"') {
          cur += '"';
          ++i;
        } else quoted = false;
      } else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/**
 * Split dataset truths into what computeMap() takes: `truths` without the difficult objects and,
 * when any object is difficult, `difficult` holding all of them (darknet's `difficult=` list).
 */
export function splitDifficult(truths: Truth[]): { truths: MapTruth[]; difficult?: MapTruth[] } {
  const toMap = (t: Truth): MapTruth => ({ classId: t.classId, box: { x: t.x, y: t.y, w: t.w, h: t.h } });
  if (!truths.some((t) => t.difficult)) return { truths: truths.map(toMap) };
  return { truths: truths.filter((t) => !t.difficult).map(toMap), difficult: truths.map(toMap) };
}

function listImages(dir: string, recursive: boolean | undefined): string[] {
  const collator = new Intl.Collator('en', { numeric: true });
  const walk = (d: string, deep: boolean): string[] => {
    const entries = fs.readdirSync(d, { withFileTypes: true });
    entries.sort((a, b) => collator.compare(a.name, b.name));
    const out: string[] = [];
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (deep && e.name !== 'labels' && !e.name.startsWith('.')) out.push(...walk(p, true));
      } else if (isImagePath(e.name)) out.push(p);
    }
    return out;
  };
  if (recursive) return walk(dir, true);
  const here = walk(dir, false);
  if (here.length > 0) return here;
  const imagesDir = path.join(dir, 'images');
  if (fs.existsSync(imagesDir) && fs.statSync(imagesDir).isDirectory()) return walk(imagesDir, true);
  return walk(dir, true);
}

function findNamesNear(dirs: string[]): string[] | undefined {
  for (const d of dirs) {
    let files: string[];
    try {
      files = fs.readdirSync(d).filter((n) => n.endsWith('.names'));
    } catch {
      continue;
    }
    if (files.length === 1) return namesFrom(path.join(d, files[0]));
  }
  return undefined;
}

function checkClassIds(items: DatasetItem[], names: string[] | undefined, warnings: Warnings): void {
  if (!names) return;
  for (const it of items) {
    for (const t of it.truths) {
      if (t.classId >= names.length) {
        warnings.add(`class id ${t.classId} >= ${names.length} names: ${it.labelPath ?? it.image}`);
      }
    }
  }
}

function summarize(items: DatasetItem[]): DatasetSummary {
  let withLabels = 0;
  let boxes = 0;
  let difficult = 0;
  let missingImages = 0;
  for (const it of items) {
    if (it.labelPath !== undefined) withLabels++;
    boxes += it.truths.length;
    for (const t of it.truths) if (t.difficult) difficult++;
    if (it.missingImage) missingImages++;
  }
  return { images: items.length, withLabels, missingLabels: items.length - withLabels, boxes, difficult, missingImages };
}

class Warnings {
  readonly list: string[] = [];
  private dropped = 0;
  add(msg: string): void {
    if (this.list.length < 100) this.list.push(msg);
    else if (this.dropped++ === 0) this.list.push('… more warnings omitted');
  }
}

function readText(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${what}: ${file}: ${errMessage(err)}`);
  }
}

function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
