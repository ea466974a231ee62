// Boxes and detections with AlexeyAB darknet's exact semantics (src/box.c, src/yolo_layer.c); NMS is in nms.ts.
//
// Darknet computes everything here in 32-bit floats. Every arithmetic step below is rounded with
// Math.fround in darknet's operation order, so IoU values (and therefore `> thresh` decisions made
// on them) are the same bits darknet gets, barring compiler FMA contraction / -ffast-math.

const f = Math.fround;

/** Centre-based box: (x, y) centre, (w, h) size. Coordinates are relative (0..1) unless stated. */
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** One candidate box, as darknet's `detection` struct. */
export interface Detection {
  box: Box;
  objectness: number;
  /** Per-class probability objectness*class_prob, 0 where it was not above the threshold (darknet). */
  prob: Float32Array;
  classes: number;
}

/** darknet overlap(): 1-D intersection length (may be negative). */
function overlap(x1: number, w1: number, x2: number, w2: number): number {
  const l1 = f(x1 - f(w1 / 2));
  const l2 = f(x2 - f(w2 / 2));
  const left = l1 > l2 ? l1 : l2;
  const r1 = f(x1 + f(w1 / 2));
  const r2 = f(x2 + f(w2 / 2));
  const right = r1 < r2 ? r1 : r2;
  return f(right - left);
}

/** darknet box_intersection(). */
export function boxIntersection(a: Box, b: Box): number {
  const w = overlap(f(a.x), f(a.w), f(b.x), f(b.w));
  const h = overlap(f(a.y), f(a.h), f(b.y), f(b.h));
  if (w < 0 || h < 0) return 0;
  return f(w * h);
}

/** darknet box_union(). */
export function boxUnion(a: Box, b: Box): number {
  const i = boxIntersection(a, b);
  return f(f(f(f(a.w) * f(a.h)) + f(f(b.w) * f(b.h))) - i);
}

/** darknet box_iou() (AlexeyAB: returns 0 when the intersection or the union is 0). */
export function boxIou(a: Box, b: Box): number {
  const i = boxIntersection(a, b);
  const u = f(f(f(f(a.w) * f(a.h)) + f(f(b.w) * f(b.h))) - i);
  if (i === 0 || u === 0) return 0;
  return f(i / u);
}

/**
 * Detections from decoded rows `[x, y, w, h, objectness, cls_0 .. cls_{C-1}]` (stride 5 + classes),
 * box relative to the network input (0..1), as darknet get_yolo_detections() builds them: a row is
 * kept only when objectness > thresh, and prob[j] = objectness*cls_j when that product > thresh,
 * else 0. Rows are visited in order, so the output order follows the exporter's row order.
 */
export function detectionsFromDecoded(
  rows: Float32Array,
  count: number,
  classes: number,
  thresh: number,
): Detection[] {
  const stride = 5 + classes;
  if (rows.length < count * stride) {
    throw new RangeError(
      `detectionsFromDecoded: ${count} rows of ${stride} values need ${count * stride} floats, got ${rows.length}`,
    );
  }
  const t = f(thresh);
  const out: Detection[] = [];
  for (let r = 0; r < count; ++r) {
    const o = r * stride;
    const objectness = rows[o + 4];
    if (!(objectness > t)) continue; // NaN objectness is rejected, as in darknet
    const prob = new Float32Array(classes);
    for (let j = 0; j < classes; ++j) {
      const p = f(objectness * rows[o + 5 + j]);
      prob[j] = p > t ? p : 0;
    }
    out.push({
      box: { x: rows[o], y: rows[o + 1], w: rows[o + 2], h: rows[o + 3] },
      objectness,
      prob,
      classes,
    });
  }
  return out;
}

/**
 * darknet correct_yolo_boxes() with relative = 1: maps boxes relative to the network input to
 * boxes relative to the original image. Without letterbox this is the identity (the image was
 * stretched onto the whole input). With letterbox it undoes the centred padding of
 * letterbox_image(). Mutates and returns `dets`.
 */
export function correctBoxes(
  dets: Detection[],
  imageW: number,
  imageH: number,
  netW: number,
  netH: number,
  letterBox: boolean,
): Detection[] {
  const { newW, newH } = letterBox ? letterboxSize(imageW, imageH, netW, netH) : { newW: netW, newH: netH };
  const deltaw = f(netW - newW);
  const deltah = f(netH - newH);
  const ratiow = f(newW / netW);
  const ratioh = f(newH / netH);
  const invw = f(1 / ratiow);
  const invh = f(1 / ratioh);
  for (const d of dets) {
    const b = d.box;
    // darknet: b.x = (b.x - deltaw / 2. / netw) / ratiow  — evaluated in double, stored as float
    b.x = f((f(b.x) - deltaw / 2 / netW) / ratiow);
    b.y = f((f(b.y) - deltah / 2 / netH) / ratioh);
    b.w = f(f(b.w) * invw);
    b.h = f(f(b.h) * invh);
  }
  return dets;
}

/**
 * The resized size darknet's letterbox_image() / correct_yolo_boxes() use: keep the aspect ratio,
 * fit inside net w x h (integer division truncates).
 */
export function letterboxSize(
  imageW: number,
  imageH: number,
  netW: number,
  netH: number,
): { newW: number; newH: number } {
  if (f(netW / imageW) < f(netH / imageH)) {
    return { newW: netW, newH: Math.trunc((imageH * netW) / imageW) };
  }
  return { newW: Math.trunc((imageW * netH) / imageH), newH: netH };
}
