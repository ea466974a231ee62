;; SIMD training kernels over NHWC tensors in tfjs-backend-wasm's own memory (imported: every
;; pointer is a byte offset into tfjs's heap), for core/engine/kernels.ts:
;;  * batch norm + piecewise-linear activation, forward and backward (bnActForward / bnActBackward
;;    keep the per-channel arithmetic in JavaScript), four channels per lane group. A tensor is
;;    [rows, C] float32, rows = B·H·W. Sums are float64 per element, as the JavaScript loops they
;;    replace: blocks of about 4096 values (every channel of a few rows, in L1) are summed in
;;    float64 registers, then added to the float64 arrays;
;;  * the filter gradient of a 1×1 stride-1 conv (and of strided convs, on their patch rows);
;;  * the depthwise conv's filter and input gradients; the patch rows (im2col) of a conv's input;
;;  * darknet's SGD step (the velocity updated in place).
;; After editing, run `npm run build:wasm` (writes train-kernels-wasm.ts; a unit test checks they agree).
(module
  (import "env" "memory" (memory 1))

  ;; Rows per block: about 4096 values, at least one row.
  (func $blockRows (param $C i32) (result i32)
    (select (i32.div_u (i32.const 4096) (local.get $C)) (i32.const 1)
      (i32.gt_u (i32.div_u (i32.const 4096) (local.get $C)) (i32.const 0))))

  ;; sum[c] += Σ x[r][c], sq[c] += Σ x[r][c]² (sum, sq: float64 arrays of C).
  (func (export "stats") (param $x i32) (param $rows i32) (param $C i32) (param $sum i32) (param $sq i32)
    (local $blk i32) (local $r0 i32) (local $r1 i32) (local $c i32) (local $c4 i32) (local $rowBytes i32)
    (local $p i32) (local $end i32) (local $a i32) (local $v v128) (local $lo v128) (local $hi v128)
    (local $s0 v128) (local $s1 v128) (local $q0 v128) (local $q1 v128) (local $f f64) (local $fs f64) (local $fq f64)
    (local.set $rowBytes (i32.shl (local.get $C) (i32.const 2)))
    (local.set $c4 (i32.and (local.get $C) (i32.const -4)))
    (local.set $blk (call $blockRows (local.get $C)))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $r0) (local.get $rows)))
        (local.set $r1 (i32.add (local.get $r0) (local.get $blk)))
        (if (i32.gt_u (local.get $r1) (local.get $rows)) (then (local.set $r1 (local.get $rows))))
        (local.set $c (i32.const 0))
        (block $groupsDone
          (loop $groups
            (br_if $groupsDone (i32.ge_u (local.get $c) (local.get $c4)))
            (local.set $s0 (v128.const i64x2 0 0))
            (local.set $s1 (v128.const i64x2 0 0))
            (local.set $q0 (v128.const i64x2 0 0))
            (local.set $q1 (v128.const i64x2 0 0))
            (local.set $p (i32.add (local.get $x) (i32.shl (i32.add (i32.mul (local.get $r0) (local.get $C)) (local.get $c)) (i32.const 2))))
            (local.set $end (i32.add (local.get $x) (i32.shl (i32.add (i32.mul (local.get $r1) (local.get $C)) (local.get $c)) (i32.const 2))))
            (block $rowsDone
              (loop $rowsLoop
                (br_if $rowsDone (i32.ge_u (local.get $p) (local.get $end)))
                (local.set $v (v128.load (local.get $p)))
                (local.set $lo (f64x2.promote_low_f32x4 (local.get $v)))
                (local.set $hi (f64x2.promote_low_f32x4
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))
                (local.set $s0 (f64x2.add (local.get $s0) (local.get $lo)))
                (local.set $s1 (f64x2.add (local.get $s1) (local.get $hi)))
                (local.set $q0 (f64x2.add (local.get $q0) (f64x2.mul (local.get $lo) (local.get $lo))))
                (local.set $q1 (f64x2.add (local.get $q1) (f64x2.mul (local.get $hi) (local.get $hi))))
                (local.set $p (i32.add (local.get $p) (local.get $rowBytes)))
                (br $rowsLoop)))
            (local.set $a (i32.add (local.get $sum) (i32.shl (local.get $c) (i32.const 3))))
            (v128.store (local.get $a) (f64x2.add (v128.load (local.get $a)) (local.get $s0)))
            (v128.store offset=16 (local.get $a) (f64x2.add (v128.load offset=16 (local.get $a)) (local.get $s1)))
            (local.set $a (i32.add (local.get $sq) (i32.shl (local.get $c) (i32.const 3))))
            (v128.store (local.get $a) (f64x2.add (v128.load (local.get $a)) (local.get $q0)))
            (v128.store offset=16 (local.get $a) (f64x2.add (v128.load offset=16 (local.get $a)) (local.get $q1)))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $groups)))
        ;; the last C mod 4 channels, one at a time
        (block $tailDone
          (loop $tail
            (br_if $tailDone (i32.ge_u (local.get $c) (local.get $C)))
            (local.set $fs (f64.const 0))
            (local.set $fq (f64.const 0))
            (local.set $p (i32.add (local.get $x) (i32.shl (i32.add (i32.mul (local.get $r0) (local.get $C)) (local.get $c)) (i32.const 2))))
            (local.set $end (i32.add (local.get $x) (i32.shl (i32.add (i32.mul (local.get $r1) (local.get $C)) (local.get $c)) (i32.const 2))))
            (block $tailRowsDone
              (loop $tailRows
                (br_if $tailRowsDone (i32.ge_u (local.get $p) (local.get $end)))
                (local.set $f (f64.promote_f32 (f32.load (local.get $p))))
                (local.set $fs (f64.add (local.get $fs) (local.get $f)))
                (local.set $fq (f64.add (local.get $fq) (f64.mul (local.get $f) (local.get $f))))
                (local.set $p (i32.add (local.get $p) (local.get $rowBytes)))
                (br $tailRows)))
            (local.set $a (i32.add (local.get $sum) (i32.shl (local.get $c) (i32.const 3))))
            (f64.store (local.get $a) (f64.add (f64.load (local.get $a)) (local.get $fs)))
            (local.set $a (i32.add (local.get $sq) (i32.shl (local.get $c) (i32.const 3))))
            (f64.store (local.get $a) (f64.add (f64.load (local.get $a)) (local.get $fq)))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $tail)))
        (local.set $r0 (local.get $r1))
        (br $blocks))))

  ;; y[r][c] = k1·z + k2·|z| + 0, z = x[r][c]·a[c] + b[c] (a, b: float32 arrays of C).
  (func (export "apply") (param $x i32) (param $y i32) (param $rows i32) (param $C i32) (param $a i32) (param $b i32) (param $k1 f32) (param $k2 f32)
    (local $r i32) (local $c i32) (local $c4 i32) (local $off i32) (local $row i32) (local $z v128) (local $zs f32)
    (local $k1v v128) (local $k2v v128)
    (local.set $k1v (f32x4.splat (local.get $k1)))
    (local.set $k2v (f32x4.splat (local.get $k2)))
    (local.set $c4 (i32.and (local.get $C) (i32.const -4)))
    (block $done
      (loop $rowsLoop
        (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $row (i32.shl (i32.mul (local.get $r) (local.get $C)) (i32.const 2)))
        (local.set $c (i32.const 0))
        (block $groupsDone
          (loop $groups
            (br_if $groupsDone (i32.ge_u (local.get $c) (local.get $c4)))
            (local.set $off (i32.shl (local.get $c) (i32.const 2)))
            (local.set $z (f32x4.add
              (f32x4.mul (v128.load (i32.add (local.get $x) (i32.add (local.get $row) (local.get $off)))) (v128.load (i32.add (local.get $a) (local.get $off))))
              (v128.load (i32.add (local.get $b) (local.get $off)))))
            (v128.store (i32.add (local.get $y) (i32.add (local.get $row) (local.get $off)))
              (f32x4.add
                (f32x4.add (f32x4.mul (local.get $k1v) (local.get $z)) (f32x4.mul (local.get $k2v) (f32x4.abs (local.get $z))))
                (v128.const i32x4 0 0 0 0)))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $groups)))
        (block $tailDone
          (loop $tail
            (br_if $tailDone (i32.ge_u (local.get $c) (local.get $C)))
            (local.set $off (i32.shl (local.get $c) (i32.const 2)))
            (local.set $zs (f32.add
              (f32.mul (f32.load (i32.add (local.get $x) (i32.add (local.get $row) (local.get $off)))) (f32.load (i32.add (local.get $a) (local.get $off))))
              (f32.load (i32.add (local.get $b) (local.get $off)))))
            (f32.store (i32.add (local.get $y) (i32.add (local.get $row) (local.get $off)))
              (f32.add
                (f32.add (f32.mul (local.get $k1) (local.get $zs)) (f32.mul (local.get $k2) (f32.abs (local.get $zs))))
                (f32.const 0)))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $tail)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rowsLoop))))

  ;; dz = dy·act'(y); sdz[c] += Σ dz, sdzx[c] += Σ dz·x (sdz, sdzx: float64 arrays of C). act'(z) from
  ;; the output y: 1 where y > 0 (read as an int: sign bit clear, not +0), else slope (1 for linear).
  ;; (Written out at each use, not as a function: a call per four values costs more than the math.)
  (func (export "gradStats") (param $dy i32) (param $y i32) (param $x i32) (param $rows i32) (param $C i32) (param $slope f32) (param $sdz i32) (param $sdzx i32)
    (local $blk i32) (local $r0 i32) (local $r1 i32) (local $c i32) (local $c4 i32) (local $rowBytes i32)
    (local $off i32) (local $end i32) (local $a i32) (local $sv v128) (local $dz v128) (local $xv v128)
    (local $s0 v128) (local $s1 v128) (local $q0 v128) (local $q1 v128) (local $fd f64) (local $fs f64) (local $fq f64) (local $yb i32)
    (local.set $sv (f32x4.splat (local.get $slope)))
    (local.set $rowBytes (i32.shl (local.get $C) (i32.const 2)))
    (local.set $c4 (i32.and (local.get $C) (i32.const -4)))
    (local.set $blk (call $blockRows (local.get $C)))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $r0) (local.get $rows)))
        (local.set $r1 (i32.add (local.get $r0) (local.get $blk)))
        (if (i32.gt_u (local.get $r1) (local.get $rows)) (then (local.set $r1 (local.get $rows))))
        (local.set $c (i32.const 0))
        (block $groupsDone
          (loop $groups
            (br_if $groupsDone (i32.ge_u (local.get $c) (local.get $c4)))
            (local.set $s0 (v128.const i64x2 0 0))
            (local.set $s1 (v128.const i64x2 0 0))
            (local.set $q0 (v128.const i64x2 0 0))
            (local.set $q1 (v128.const i64x2 0 0))
            (local.set $off (i32.shl (i32.add (i32.mul (local.get $r0) (local.get $C)) (local.get $c)) (i32.const 2)))
            (local.set $end (i32.shl (i32.add (i32.mul (local.get $r1) (local.get $C)) (local.get $c)) (i32.const 2)))
            (block $rowsDone
              (loop $rowsLoop
                (br_if $rowsDone (i32.ge_u (local.get $off) (local.get $end)))
                (local.set $dz (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $off)))
                  (v128.bitselect (v128.const f32x4 1 1 1 1) (local.get $sv) (i32x4.gt_s (v128.load (i32.add (local.get $y) (local.get $off))) (v128.const i32x4 0 0 0 0)))))
                ;; dz·x rounded to float32 once (relative 6e-8 a term), summed in float64
                (local.set $xv (f32x4.mul (local.get $dz) (v128.load (i32.add (local.get $x) (local.get $off)))))
                (local.set $s0 (f64x2.add (local.get $s0) (f64x2.promote_low_f32x4 (local.get $dz))))
                (local.set $s1 (f64x2.add (local.get $s1) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $dz) (local.get $dz)))))
                (local.set $q0 (f64x2.add (local.get $q0) (f64x2.promote_low_f32x4 (local.get $xv))))
                (local.set $q1 (f64x2.add (local.get $q1) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $xv) (local.get $xv)))))
                (local.set $off (i32.add (local.get $off) (local.get $rowBytes)))
                (br $rowsLoop)))
            (local.set $a (i32.add (local.get $sdz) (i32.shl (local.get $c) (i32.const 3))))
            (v128.store (local.get $a) (f64x2.add (v128.load (local.get $a)) (local.get $s0)))
            (v128.store offset=16 (local.get $a) (f64x2.add (v128.load offset=16 (local.get $a)) (local.get $s1)))
            (local.set $a (i32.add (local.get $sdzx) (i32.shl (local.get $c) (i32.const 3))))
            (v128.store (local.get $a) (f64x2.add (v128.load (local.get $a)) (local.get $q0)))
            (v128.store offset=16 (local.get $a) (f64x2.add (v128.load offset=16 (local.get $a)) (local.get $q1)))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $groups)))
        (block $tailDone
          (loop $tail
            (br_if $tailDone (i32.ge_u (local.get $c) (local.get $C)))
            (local.set $fs (f64.const 0))
            (local.set $fq (f64.const 0))
            (local.set $off (i32.shl (i32.add (i32.mul (local.get $r0) (local.get $C)) (local.get $c)) (i32.const 2)))
            (local.set $end (i32.shl (i32.add (i32.mul (local.get $r1) (local.get $C)) (local.get $c)) (i32.const 2)))
            (block $tailRowsDone
              (loop $tailRows
                (br_if $tailRowsDone (i32.ge_u (local.get $off) (local.get $end)))
                (local.set $yb (i32.load (i32.add (local.get $y) (local.get $off))))
                (local.set $fd (f64.promote_f32 (f32.mul (f32.load (i32.add (local.get $dy) (local.get $off)))
                  (select (f32.const 1) (local.get $slope) (i32.gt_s (local.get $yb) (i32.const 0))))))
                (local.set $fs (f64.add (local.get $fs) (local.get $fd)))
                (local.set $fq (f64.add (local.get $fq) (f64.mul (local.get $fd) (f64.promote_f32 (f32.load (i32.add (local.get $x) (local.get $off)))))))
                (local.set $off (i32.add (local.get $off) (local.get $rowBytes)))
                (br $tailRows)))
            (local.set $a (i32.add (local.get $sdz) (i32.shl (local.get $c) (i32.const 3))))
            (f64.store (local.get $a) (f64.add (f64.load (local.get $a)) (local.get $fs)))
            (local.set $a (i32.add (local.get $sdzx) (i32.shl (local.get $c) (i32.const 3))))
            (f64.store (local.get $a) (f64.add (f64.load (local.get $a)) (local.get $fq)))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $tail)))
        (local.set $r0 (local.get $r1))
        (br $blocks))))

  ;; dx[r][c] = k[c]·dz + p[c]·(x − m[c]) + q[c], dz = dy·act'(y) (k, p, q, m: float32 arrays of C).
  (func (export "gradApply") (param $dy i32) (param $y i32) (param $x i32) (param $dx i32) (param $rows i32) (param $C i32) (param $slope f32)
    (param $k i32) (param $p i32) (param $q i32) (param $m i32)
    (local $r i32) (local $c i32) (local $c4 i32) (local $off i32) (local $row i32) (local $i i32) (local $sv v128) (local $dzs f32)
    (local.set $sv (f32x4.splat (local.get $slope)))
    (local.set $c4 (i32.and (local.get $C) (i32.const -4)))
    (block $done
      (loop $rowsLoop
        (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $row (i32.shl (i32.mul (local.get $r) (local.get $C)) (i32.const 2)))
        (local.set $c (i32.const 0))
        (block $groupsDone
          (loop $groups
            (br_if $groupsDone (i32.ge_u (local.get $c) (local.get $c4)))
            (local.set $off (i32.shl (local.get $c) (i32.const 2)))
            (local.set $i (i32.add (local.get $row) (local.get $off)))
            (v128.store (i32.add (local.get $dx) (local.get $i))
              (f32x4.add
                (f32x4.add
                  (f32x4.mul (v128.load (i32.add (local.get $k) (local.get $off)))
                    (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $i)))
                      (v128.bitselect (v128.const f32x4 1 1 1 1) (local.get $sv) (i32x4.gt_s (v128.load (i32.add (local.get $y) (local.get $i))) (v128.const i32x4 0 0 0 0)))))
                  (f32x4.mul (v128.load (i32.add (local.get $p) (local.get $off)))
                    (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $i))) (v128.load (i32.add (local.get $m) (local.get $off))))))
                (v128.load (i32.add (local.get $q) (local.get $off)))))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $groups)))
        (block $tailDone
          (loop $tail
            (br_if $tailDone (i32.ge_u (local.get $c) (local.get $C)))
            (local.set $off (i32.shl (local.get $c) (i32.const 2)))
            (local.set $i (i32.add (local.get $row) (local.get $off)))
            (local.set $dzs (f32.mul (f32.load (i32.add (local.get $dy) (local.get $i)))
              (select (f32.const 1) (local.get $slope) (i32.gt_s (i32.load (i32.add (local.get $y) (local.get $i))) (i32.const 0)))))
            (f32.store (i32.add (local.get $dx) (local.get $i))
              (f32.add
                (f32.add
                  (f32.mul (f32.load (i32.add (local.get $k) (local.get $off))) (local.get $dzs))
                  (f32.mul (f32.load (i32.add (local.get $p) (local.get $off)))
                    (f32.sub (f32.load (i32.add (local.get $x) (local.get $i))) (f32.load (i32.add (local.get $m) (local.get $off))))))
                (f32.load (i32.add (local.get $q) (local.get $off)))))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $tail)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rowsLoop))))
  ;; acc[i][o] += Σ_p x[p][i]·dy[p][o]: the filter gradient of a 1×1 stride-1 conv (x: [P, ci],
  ;; dy: [P, co] float32; acc: float64 [ci, co]; ci and co multiples of 4). Tiles of 4×4 outputs
  ;; in float32 registers over blocks of 256 pixels (x and dy of a block stay in L2), added to acc
  ;; after each block.
  (func (export "conv1x1FilterGrad") (param $x i32) (param $dy i32) (param $P i32) (param $ci i32) (param $co i32) (param $acc i32)
    (local $p0 i32) (local $p1 i32) (local $i i32) (local $o i32) (local $xp i32) (local $dp i32) (local $xEnd i32)
    (local $xStride i32) (local $dStride i32) (local $xv v128) (local $d v128) (local $ap i32) (local $rowBytes i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $xStride (i32.shl (local.get $ci) (i32.const 2)))
    (local.set $dStride (i32.shl (local.get $co) (i32.const 2)))
    (local.set $rowBytes (i32.shl (local.get $co) (i32.const 3)))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $p0) (local.get $P)))
        (local.set $p1 (i32.add (local.get $p0) (i32.const 256)))
        (if (i32.gt_u (local.get $p1) (local.get $P)) (then (local.set $p1 (local.get $P))))
        (local.set $i (i32.const 0))
        (block $rowsDone
          (loop $rowsLoop
            (br_if $rowsDone (i32.ge_u (local.get $i) (local.get $ci)))
            (local.set $o (i32.const 0))
            (block $colsDone
              (loop $cols
                (br_if $colsDone (i32.ge_u (local.get $o) (local.get $co)))
                (local.set $a0 (v128.const i32x4 0 0 0 0))
                (local.set $a1 (v128.const i32x4 0 0 0 0))
                (local.set $a2 (v128.const i32x4 0 0 0 0))
                (local.set $a3 (v128.const i32x4 0 0 0 0))
                (local.set $xp (i32.add (local.get $x) (i32.shl (i32.add (i32.mul (local.get $p0) (local.get $ci)) (local.get $i)) (i32.const 2))))
                (local.set $xEnd (i32.add (local.get $x) (i32.shl (i32.add (i32.mul (local.get $p1) (local.get $ci)) (local.get $i)) (i32.const 2))))
                (local.set $dp (i32.add (local.get $dy) (i32.shl (i32.add (i32.mul (local.get $p0) (local.get $co)) (local.get $o)) (i32.const 2))))
                (block $pixDone
                  (loop $pix
                    (br_if $pixDone (i32.ge_u (local.get $xp) (local.get $xEnd)))
                    (local.set $xv (v128.load (local.get $xp)))
                    (local.set $d (v128.load (local.get $dp)))
                    (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $xv) (local.get $xv)) (local.get $d))))
                    (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $xv) (local.get $xv)) (local.get $d))))
                    (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $xv) (local.get $xv)) (local.get $d))))
                    (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $xv) (local.get $xv)) (local.get $d))))
                    (local.set $xp (i32.add (local.get $xp) (local.get $xStride)))
                    (local.set $dp (i32.add (local.get $dp) (local.get $dStride)))
                    (br $pix)))
                ;; rows i..i+3 of acc, columns o..o+3 (two float64 pairs each)
                (local.set $ap (i32.add (local.get $acc) (i32.shl (i32.add (i32.mul (local.get $i) (local.get $co)) (local.get $o)) (i32.const 3))))
                (call $addF64 (local.get $ap) (local.get $a0))
                (local.set $ap (i32.add (local.get $ap) (local.get $rowBytes)))
                (call $addF64 (local.get $ap) (local.get $a1))
                (local.set $ap (i32.add (local.get $ap) (local.get $rowBytes)))
                (call $addF64 (local.get $ap) (local.get $a2))
                (local.set $ap (i32.add (local.get $ap) (local.get $rowBytes)))
                (call $addF64 (local.get $ap) (local.get $a3))
                (local.set $o (i32.add (local.get $o) (i32.const 4)))
                (br $cols)))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $rowsLoop)))
        (local.set $p0 (local.get $p1))
        (br $blocks))))

  ;; The four float32 lanes of $v added to the four float64 values at $at.
  (func $addF64 (param $at i32) (param $v v128)
    (v128.store (local.get $at) (f64x2.add (v128.load (local.get $at)) (f64x2.promote_low_f32x4 (local.get $v))))
    (v128.store offset=16 (local.get $at) (f64x2.add (v128.load offset=16 (local.get $at))
      (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))))

  ;; The gradients of an undilated depthwise conv with multiplier 1 (x, dx: [B, H, W, C], dy:
  ;; [B, Ho, Wo, C] float32; C a multiple of 4), over the (output row, tap) pairs that touch the image:
  ;;  $mode 0, filter gradient: $t[(ki·kw + kj)·C + c] += Σ x[b, oh·sh + ki − top, ow·sw + kj − left, c]·dy[b, oh, ow, c]
  ;;    ($x: x, $t: float64 sums); each four-channel group sums its row in float32 lanes;
  ;;  $mode 1, input gradient: dx[b, oh·sh + ki − top, ow·sw + kj − left, c] += w[ki, kj, c]·dy[b, oh, ow, c]
  ;;    ($x: dx, zeroed by the caller, $t: the float32 filter w).
  ;; $ranges holds, per kj, the first and last output column whose input column is inside the image
  ;; (int32 pairs, computed by the caller).
  (func (export "depthwise")
    (param $mode i32) (param $x i32) (param $dy i32) (param $t i32) (param $ranges i32)
    (param $B i32) (param $H i32) (param $W i32) (param $C i32) (param $Ho i32) (param $Wo i32)
    (param $sh i32) (param $sw i32) (param $kh i32) (param $kw i32) (param $top i32) (param $left i32)
    (local $b i32) (local $oh i32) (local $ki i32) (local $kj i32) (local $ih i32) (local $lo i32) (local $cnt i32)
    (local $xRow i32) (local $dyRow i32) (local $x0 i32) (local $d0 i32) (local $aBase i32) (local $c i32)
    (local $xp i32) (local $dp i32) (local $n i32) (local $xStep i32) (local $dStep i32) (local $s v128) (local $wv v128)
    (local.set $xStep (i32.shl (i32.mul (local.get $sw) (local.get $C)) (i32.const 2)))
    (local.set $dStep (i32.shl (local.get $C) (i32.const 2)))
    (block $bDone
      (loop $bLoop
        (br_if $bDone (i32.ge_u (local.get $b) (local.get $B)))
        (local.set $oh (i32.const 0))
        (block $ohDone
          (loop $ohLoop
            (br_if $ohDone (i32.ge_u (local.get $oh) (local.get $Ho)))
            (local.set $dyRow (i32.mul (i32.add (i32.mul (local.get $b) (local.get $Ho)) (local.get $oh)) (local.get $Wo)))
            (local.set $ki (i32.const 0))
            (block $kiDone
              (loop $kiLoop
                (br_if $kiDone (i32.ge_u (local.get $ki) (local.get $kh)))
                (local.set $ih (i32.sub (i32.add (i32.mul (local.get $oh) (local.get $sh)) (local.get $ki)) (local.get $top)))
                (if (i32.and (i32.ge_s (local.get $ih) (i32.const 0)) (i32.lt_s (local.get $ih) (local.get $H)))
                  (then
                    (local.set $xRow (i32.mul (i32.add (i32.mul (local.get $b) (local.get $H)) (local.get $ih)) (local.get $W)))
                    (local.set $kj (i32.const 0))
                    (block $kjDone
                      (loop $kjLoop
                        (br_if $kjDone (i32.ge_u (local.get $kj) (local.get $kw)))
                        (local.set $lo (i32.load (i32.add (local.get $ranges) (i32.shl (local.get $kj) (i32.const 3)))))
                        (local.set $cnt (i32.sub (i32.load offset=4 (i32.add (local.get $ranges) (i32.shl (local.get $kj) (i32.const 3)))) (local.get $lo)))
                        (local.set $cnt (i32.add (local.get $cnt) (i32.const 1)))
                        (if (i32.gt_s (local.get $cnt) (i32.const 0))
                          (then
                            ;; x0 = (xRow + lo·sw + kj − left)·C, d0 = (dyRow + lo)·C, aBase = (ki·kw + kj)·C
                            (local.set $x0 (i32.mul (i32.sub (i32.add (i32.add (local.get $xRow) (i32.mul (local.get $lo) (local.get $sw))) (local.get $kj)) (local.get $left)) (local.get $C)))
                            (local.set $d0 (i32.mul (i32.add (local.get $dyRow) (local.get $lo)) (local.get $C)))
                            (local.set $aBase (i32.mul (i32.add (i32.mul (local.get $ki) (local.get $kw)) (local.get $kj)) (local.get $C)))
                            (local.set $c (i32.const 0))
                            (block $cDone
                              (loop $cLoop
                                (br_if $cDone (i32.ge_u (local.get $c) (local.get $C)))
                                (local.set $xp (i32.add (local.get $x) (i32.shl (i32.add (local.get $x0) (local.get $c)) (i32.const 2))))
                                (local.set $dp (i32.add (local.get $dy) (i32.shl (i32.add (local.get $d0) (local.get $c)) (i32.const 2))))
                                (local.set $n (local.get $cnt))
                                (if (i32.eqz (local.get $mode))
                                  (then
                                    (local.set $s (v128.const i32x4 0 0 0 0))
                                    (block $sumDone
                                      (loop $sum
                                        (br_if $sumDone (i32.eqz (local.get $n)))
                                        (local.set $s (f32x4.add (local.get $s) (f32x4.mul (v128.load (local.get $xp)) (v128.load (local.get $dp)))))
                                        (local.set $xp (i32.add (local.get $xp) (local.get $xStep)))
                                        (local.set $dp (i32.add (local.get $dp) (local.get $dStep)))
                                        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                                        (br $sum)))
                                    (call $addF64 (i32.add (local.get $t) (i32.shl (i32.add (local.get $aBase) (local.get $c)) (i32.const 3))) (local.get $s)))
                                  (else
                                    (local.set $wv (v128.load (i32.add (local.get $t) (i32.shl (i32.add (local.get $aBase) (local.get $c)) (i32.const 2)))))
                                    (block $scatterDone
                                      (loop $scatter
                                        (br_if $scatterDone (i32.eqz (local.get $n)))
                                        (v128.store (local.get $xp) (f32x4.add (v128.load (local.get $xp)) (f32x4.mul (local.get $wv) (v128.load (local.get $dp)))))
                                        (local.set $xp (i32.add (local.get $xp) (local.get $xStep)))
                                        (local.set $dp (i32.add (local.get $dp) (local.get $dStep)))
                                        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                                        (br $scatter)))))
                                (local.set $c (i32.add (local.get $c) (i32.const 4)))
                                (br $cLoop)))))
                        (local.set $kj (i32.add (local.get $kj) (i32.const 1)))
                        (br $kjLoop)))))
                (local.set $ki (i32.add (local.get $ki) (i32.const 1)))
                (br $kiLoop)))
            (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
            (br $ohLoop)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $bLoop))))

  ;; The patch rows of a conv's input: cols[(n·Ho + oy)·Wo + ox][(ky·kw + kx)·C + c] =
  ;; x[n, oy·sh + ky − top, ox·sw + kx − left, c], 0 outside the image; each row Kp floats, the
  ;; columns from kh·kw·C on zero (x: [B, H, W, C] float32).
  (func (export "im2col")
    (param $x i32) (param $cols i32) (param $B i32) (param $H i32) (param $W i32) (param $C i32) (param $Ho i32) (param $Wo i32)
    (param $sh i32) (param $sw i32) (param $kh i32) (param $kw i32) (param $top i32) (param $left i32) (param $Kp i32)
    (local $n i32) (local $oy i32) (local $ox i32) (local $ky i32) (local $kx i32) (local $iy i32) (local $ix i32)
    (local $o i32) (local $p i32) (local $end i32) (local $src i32) (local $rowEnd i32) (local $cBytes i32)
    (local.set $cBytes (i32.shl (local.get $C) (i32.const 2)))
    (local.set $o (local.get $cols))
    (block $nDone (loop $nLoop
      (br_if $nDone (i32.ge_u (local.get $n) (local.get $B)))
      (local.set $oy (i32.const 0))
      (block $oyDone (loop $oyLoop
        (br_if $oyDone (i32.ge_u (local.get $oy) (local.get $Ho)))
        (local.set $ox (i32.const 0))
        (block $oxDone (loop $oxLoop
          (br_if $oxDone (i32.ge_u (local.get $ox) (local.get $Wo)))
          (local.set $p (local.get $o))
          (local.set $ky (i32.const 0))
          (block $kyDone (loop $kyLoop
            (br_if $kyDone (i32.ge_u (local.get $ky) (local.get $kh)))
            (local.set $iy (i32.sub (i32.add (i32.mul (local.get $oy) (local.get $sh)) (local.get $ky)) (local.get $top)))
            (local.set $kx (i32.const 0))
            (block $kxDone (loop $kxLoop
              (br_if $kxDone (i32.ge_u (local.get $kx) (local.get $kw)))
              (local.set $ix (i32.sub (i32.add (i32.mul (local.get $ox) (local.get $sw)) (local.get $kx)) (local.get $left)))
              (local.set $end (i32.add (local.get $p) (local.get $cBytes)))
              (if (i32.and
                    (i32.and (i32.ge_s (local.get $iy) (i32.const 0)) (i32.lt_s (local.get $iy) (local.get $H)))
                    (i32.and (i32.ge_s (local.get $ix) (i32.const 0)) (i32.lt_s (local.get $ix) (local.get $W))))
                (then
                  (local.set $src (i32.add (local.get $x)
                    (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $n) (local.get $H)) (local.get $iy)) (local.get $W)) (local.get $ix)) (local.get $cBytes))))
                  (block $cpDone (loop $cp
                    (br_if $cpDone (i32.ge_u (local.get $p) (local.get $end)))
                    (f32.store (local.get $p) (f32.load (local.get $src)))
                    (local.set $p (i32.add (local.get $p) (i32.const 4)))
                    (local.set $src (i32.add (local.get $src) (i32.const 4)))
                    (br $cp))))
                (else
                  (block $zDone (loop $z
                    (br_if $zDone (i32.ge_u (local.get $p) (local.get $end)))
                    (f32.store (local.get $p) (f32.const 0))
                    (local.set $p (i32.add (local.get $p) (i32.const 4)))
                    (br $z)))))
              (local.set $kx (i32.add (local.get $kx) (i32.const 1)))
              (br $kxLoop)))
            (local.set $ky (i32.add (local.get $ky) (i32.const 1)))
            (br $kyLoop)))
          ;; the zero columns up to Kp
          (local.set $rowEnd (i32.add (local.get $o) (i32.shl (local.get $Kp) (i32.const 2))))
          (block $padDone (loop $pad
            (br_if $padDone (i32.ge_u (local.get $p) (local.get $rowEnd)))
            (f32.store (local.get $p) (f32.const 0))
            (local.set $p (i32.add (local.get $p) (i32.const 4)))
            (br $pad)))
          (local.set $o (local.get $rowEnd))
          (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
          (br $oxLoop)))
        (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
        (br $oyLoop)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $nLoop))))

  ;; One SGD step (optimizer.ts, Sgd.apply: the same float32 operations in the same order, so the
  ;; same bits): s = g + w·decay (no decay term when decay is 0), v = v·momentum + s (in place),
  ;; w' = w − v·lr into $wOut, over n values.
  (func (export "sgd") (param $w i32) (param $wOut i32) (param $v i32) (param $g i32) (param $n i32) (param $lr f32) (param $m f32) (param $decay f32)
    (local $i i32) (local $n4 i32) (local $o i32) (local $wd i32)
    (local $s v128) (local $nv v128) (local $lrv v128) (local $mv v128) (local $dv v128) (local $ss f32) (local $nvs f32)
    (local.set $lrv (f32x4.splat (local.get $lr)))
    (local.set $mv (f32x4.splat (local.get $m)))
    (local.set $dv (f32x4.splat (local.get $decay)))
    (local.set $wd (f32.ne (local.get $decay) (f32.const 0)))
    (local.set $n4 (i32.and (local.get $n) (i32.const -4)))
    (block $vecDone
      (loop $vec
        (br_if $vecDone (i32.ge_u (local.get $i) (local.get $n4)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (local.set $s (v128.load (i32.add (local.get $g) (local.get $o))))
        (if (local.get $wd) (then
          (local.set $s (f32x4.add (local.get $s) (f32x4.mul (v128.load (i32.add (local.get $w) (local.get $o))) (local.get $dv))))))
        (local.set $nv (f32x4.add (f32x4.mul (v128.load (i32.add (local.get $v) (local.get $o))) (local.get $mv)) (local.get $s)))
        (v128.store (i32.add (local.get $v) (local.get $o)) (local.get $nv))
        (v128.store (i32.add (local.get $wOut) (local.get $o))
          (f32x4.sub (v128.load (i32.add (local.get $w) (local.get $o))) (f32x4.mul (local.get $nv) (local.get $lrv))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $vec)))
    (block $tailDone
      (loop $tail
        (br_if $tailDone (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (local.set $ss (f32.load (i32.add (local.get $g) (local.get $o))))
        (if (local.get $wd) (then
          (local.set $ss (f32.add (local.get $ss) (f32.mul (f32.load (i32.add (local.get $w) (local.get $o))) (local.get $decay))))))
        (local.set $nvs (f32.add (f32.mul (f32.load (i32.add (local.get $v) (local.get $o))) (local.get $m)) (local.get $ss)))
        (f32.store (i32.add (local.get $v) (local.get $o)) (local.get $nvs))
        (f32.store (i32.add (local.get $wOut) (local.get $o))
          (f32.sub (f32.load (i32.add (local.get $w) (local.get $o))) (f32.mul (local.get $nvs) (local.get $lr))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail))))
)
