;; darknet resize_image()'s two passes in WebAssembly, for core/onnx/fastprep.ts. WebAssembly's f32
;; operations round every product and sum to float32 and never fuse them (no FMA), so these loops
;; give darknet's float32 results bit for bit, without the Math.fround calls JavaScript needs.
;; After editing, run `npm run build:wasm` (writes resize-wasm.ts; a unit test checks they agree).
;;
;; Memory: bytes 0..1023 hold the byte -> float table (i/255 as float32), written by the caller;
;; every other pointer is a byte offset chosen by the caller.
(module
  (memory (export "memory") 1)

  ;; One source row of interleaved RGB bytes at $src through the horizontal pass:
  ;; dst[k*w + c] = wa[c]*lut[src[ia[c]+k]] + wb[c]*lut[src[ib[c]+k]] for the three planes k.
  ;; ia/ib are int32 byte offsets into the row, wa/wb float32 weights, dst 3*w float32.
  (func (export "horizontal")
    (param $src i32) (param $ia i32) (param $ib i32) (param $wa i32) (param $wb i32) (param $dst i32) (param $w i32)
    (local $c i32) (local $off i32) (local $a i32) (local $b i32) (local $pa f32) (local $pb f32) (local $o i32) (local $plane i32)
    (local.set $plane (i32.shl (local.get $w) (i32.const 2)))
    (block $done
      (loop $columns
        (br_if $done (i32.ge_u (local.get $c) (local.get $w)))
        (local.set $off (i32.shl (local.get $c) (i32.const 2)))
        (local.set $a (i32.add (local.get $src) (i32.load (i32.add (local.get $ia) (local.get $off)))))
        (local.set $b (i32.add (local.get $src) (i32.load (i32.add (local.get $ib) (local.get $off)))))
        (local.set $pa (f32.load (i32.add (local.get $wa) (local.get $off))))
        (local.set $pb (f32.load (i32.add (local.get $wb) (local.get $off))))
        (local.set $o (i32.add (local.get $dst) (local.get $off)))
        (f32.store (local.get $o)
          (f32.add
            (f32.mul (local.get $pa) (f32.load (i32.shl (i32.load8_u (local.get $a)) (i32.const 2))))
            (f32.mul (local.get $pb) (f32.load (i32.shl (i32.load8_u (local.get $b)) (i32.const 2))))))
        (local.set $o (i32.add (local.get $o) (local.get $plane)))
        (f32.store (local.get $o)
          (f32.add
            (f32.mul (local.get $pa) (f32.load (i32.shl (i32.load8_u offset=1 (local.get $a)) (i32.const 2))))
            (f32.mul (local.get $pb) (f32.load (i32.shl (i32.load8_u offset=1 (local.get $b)) (i32.const 2))))))
        (local.set $o (i32.add (local.get $o) (local.get $plane)))
        (f32.store (local.get $o)
          (f32.add
            (f32.mul (local.get $pa) (f32.load (i32.shl (i32.load8_u offset=2 (local.get $a)) (i32.const 2))))
            (f32.mul (local.get $pb) (f32.load (i32.shl (i32.load8_u offset=2 (local.get $b)) (i32.const 2))))))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $columns))))

  ;; The vertical pass over n floats: out[i] = dy1*a[i] + dy*b[i] (four lanes at a time, then the rest).
  (func (export "vertical")
    (param $a i32) (param $b i32) (param $dy1 f32) (param $dy f32) (param $out i32) (param $n i32)
    (local $i i32) (local $end4 i32) (local $end i32) (local $v1 v128) (local $v v128)
    (local.set $v1 (f32x4.splat (local.get $dy1)))
    (local.set $v (f32x4.splat (local.get $dy)))
    (local.set $end4 (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done4
      (loop $lanes
        (br_if $done4 (i32.ge_u (local.get $i) (local.get $end4)))
        (v128.store (i32.add (local.get $out) (local.get $i))
          (f32x4.add
            (f32x4.mul (local.get $v1) (v128.load (i32.add (local.get $a) (local.get $i))))
            (f32x4.mul (local.get $v) (v128.load (i32.add (local.get $b) (local.get $i))))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $lanes)))
    (block $done
      (loop $rest
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (f32.store (i32.add (local.get $out) (local.get $i))
          (f32.add
            (f32.mul (local.get $dy1) (f32.load (i32.add (local.get $a) (local.get $i))))
            (f32.mul (local.get $dy) (f32.load (i32.add (local.get $b) (local.get $i))))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $rest))))

  ;; darknet's last output row (and single-row sources) skip the dy term: out[i] = dy1*a[i].
  (func (export "scale")
    (param $a i32) (param $dy1 f32) (param $out i32) (param $n i32)
    (local $i i32) (local $end4 i32) (local $end i32) (local $v1 v128)
    (local.set $v1 (f32x4.splat (local.get $dy1)))
    (local.set $end4 (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done4
      (loop $lanes
        (br_if $done4 (i32.ge_u (local.get $i) (local.get $end4)))
        (v128.store (i32.add (local.get $out) (local.get $i))
          (f32x4.mul (local.get $v1) (v128.load (i32.add (local.get $a) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $lanes)))
    (block $done
      (loop $rest
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (f32.store (i32.add (local.get $out) (local.get $i))
          (f32.mul (local.get $dy1) (f32.load (i32.add (local.get $a) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $rest)))))
