// darkslim_jpeg: JPEG → interleaved RGB bytes with the system's libjpeg(-turbo), for `map`'s
// decode thread. libvips (sharp) decodes with the same library and settings (islow IDCT, fancy
// upsampling) but spends 1.5-2x the CPU around it; on 2 cores that CPU is what `map` waits for.
//
// decode(buffer) returns a promise of { data, width, height } or null, decoded on libuv's pool.
// null means "let sharp do it": any file whose sharp decode could differ from a plain libjpeg
// decode (an EXIF orientation other than 1, CMYK/YCCK, a libjpeg warning such as a truncated file)
// or that libjpeg rejects. The caller then decodes with sharp, which applies orientation and
// reports errors as before.
#include <node_api.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>  // before jpeglib.h, which uses FILE
#include <string.h>
#include <jpeglib.h>

#define STR2(x) #x
#define STR(x) STR2(x)

struct error_trap {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  int warnings;
};

static void on_error(j_common_ptr cinfo) {
  struct error_trap* trap = (struct error_trap*)cinfo->err;
  longjmp(trap->jump, 1);
}

// Level -1 is a warning (corrupt data, premature end); trace levels are ignored. Nothing is printed.
static void on_message(j_common_ptr cinfo, int level) {
  if (level < 0) ((struct error_trap*)cinfo->err)->warnings++;
}

static unsigned read16(const JOCTET* p, int little) {
  return little ? (unsigned)(p[0] | (p[1] << 8)) : (unsigned)((p[0] << 8) | p[1]);
}

static uint32_t read32(const JOCTET* p, int little) {
  return little ? (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24)
                : ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

// The EXIF orientation tag of IFD0: 1 when absent, 0 when the EXIF block cannot be read (the
// caller then leaves the file to sharp).
static unsigned exif_orientation(j_decompress_ptr cinfo) {
  for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
    if (m->marker != JPEG_APP0 + 1 || m->data_length < 14 || memcmp(m->data, "Exif\0\0", 6) != 0) continue;
    const JOCTET* tiff = m->data + 6;
    size_t n = m->data_length - 6;
    int little;
    if (tiff[0] == 'I' && tiff[1] == 'I') little = 1;
    else if (tiff[0] == 'M' && tiff[1] == 'M') little = 0;
    else return 0;
    uint32_t ifd = read32(tiff + 4, little);
    if (ifd > n - 2) return 0;
    unsigned entries = read16(tiff + ifd, little);
    for (unsigned i = 0; i < entries; ++i) {
      size_t at = (size_t)ifd + 2 + (size_t)i * 12;
      if (at + 12 > n) return 0;
      if (read16(tiff + at, little) == 0x0112) return read16(tiff + at + 8, little);
    }
  }
  return 1;
}

// One decode, run off the JS thread (libuv's pool, like sharp's): the source buffer is held by a
// reference until the promise settles; the pixels are malloc'd and handed to JS in complete().
struct decode_job {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref source_ref;
  const unsigned char* src;
  size_t src_len;
  unsigned char* pixels;  // NULL: declined (the promise resolves to null)
  size_t width, height;
};

static void decode_pixels(struct decode_job* job) {
  struct jpeg_decompress_struct cinfo;
  struct error_trap trap;
  job->pixels = NULL;
  if (job->src_len < 4) return;
  cinfo.err = jpeg_std_error(&trap.pub);
  trap.pub.error_exit = on_error;
  trap.pub.emit_message = on_message;
  trap.warnings = 0;
  if (setjmp(trap.jump)) {
    jpeg_destroy_decompress(&cinfo);
    free(job->pixels);
    job->pixels = NULL;
    return;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, job->src, (unsigned long)job->src_len);
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&cinfo, TRUE);
  int plain_colour = cinfo.jpeg_color_space == JCS_YCbCr || cinfo.jpeg_color_space == JCS_GRAYSCALE ||
                     cinfo.jpeg_color_space == JCS_RGB;
  // sharp refuses images over 0x3FFF * 0x3FFF pixels by default: leave those to it as well.
  uint64_t pixels = (uint64_t)cinfo.image_width * cinfo.image_height;
  if (!plain_colour || exif_orientation(&cinfo) != 1 || trap.warnings > 0 || pixels > 0x3FFFull * 0x3FFF) {
    jpeg_destroy_decompress(&cinfo);
    return;
  }
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);
  size_t width = cinfo.output_width, height = cinfo.output_height, stride = width * 3;
  if (cinfo.output_components != 3 || !(job->pixels = malloc(stride * height))) {
    jpeg_destroy_decompress(&cinfo);
    return;
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW rows[8];
    JDIMENSION first = cinfo.output_scanline;
    int count = 0;
    for (; count < 8 && first + count < cinfo.output_height; ++count) rows[count] = job->pixels + (first + count) * stride;
    jpeg_read_scanlines(&cinfo, rows, (JDIMENSION)count);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  if (trap.warnings > 0) {
    free(job->pixels);
    job->pixels = NULL;
    return;
  }
  job->width = width;
  job->height = height;
}

static void execute(napi_env env, void* data) {
  (void)env;
  decode_pixels((struct decode_job*)data);
}

static void free_pixels(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  free(data);
}

static void complete(napi_env env, napi_status status, void* data) {
  struct decode_job* job = (struct decode_job*)data;
  napi_value result;
  napi_get_null(env, &result);
  if (status == napi_ok && job->pixels) {
    size_t bytes = job->width * job->height * 3;
    napi_value buffer, w, h;
    // Hand the pixels over without a copy; runtimes that forbid external buffers (Electron) get one.
    if (napi_create_external_buffer(env, bytes, job->pixels, free_pixels, NULL, &buffer) == napi_ok) {
      job->pixels = NULL;
    } else {
      bool pending;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value ignored;
        napi_get_and_clear_last_exception(env, &ignored);
      }
      napi_create_buffer_copy(env, bytes, job->pixels, NULL, &buffer);
    }
    napi_create_object(env, &result);
    napi_create_uint32(env, (uint32_t)job->width, &w);
    napi_create_uint32(env, (uint32_t)job->height, &h);
    napi_set_named_property(env, result, "data", buffer);
    napi_set_named_property(env, result, "width", w);
    napi_set_named_property(env, result, "height", h);
  }
  free(job->pixels);
  napi_resolve_deferred(env, job->deferred, result);
  napi_delete_reference(env, job->source_ref);
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value decode(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool is_buffer = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc >= 1) napi_is_buffer(env, argv[0], &is_buffer);
  if (!is_buffer) {
    napi_throw_type_error(env, NULL, "darkslim_jpeg.decode(buffer): expected a Buffer");
    return NULL;
  }
  struct decode_job* job = calloc(1, sizeof *job);
  if (!job) {
    napi_throw_error(env, NULL, "darkslim_jpeg.decode: out of memory");
    return NULL;
  }
  void* src;
  napi_get_buffer_info(env, argv[0], &src, &job->src_len);
  job->src = (const unsigned char*)src;
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_reference(env, argv[0], 1, &job->source_ref);
  napi_create_string_utf8(env, "darkslim_jpeg.decode", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

NAPI_MODULE_INIT() {
  napi_value fn, version;
  napi_create_function(env, "decode", NAPI_AUTO_LENGTH, decode, NULL, &fn);
  napi_set_named_property(env, exports, "decode", fn);
#ifdef LIBJPEG_TURBO_VERSION
  const char* v = "libjpeg-turbo " STR(LIBJPEG_TURBO_VERSION);
#else
  const char* v = "libjpeg " STR(JPEG_LIB_VERSION);
#endif
  napi_create_string_utf8(env, v, NAPI_AUTO_LENGTH, &version);
  napi_set_named_property(env, exports, "library", version);
  return exports;
}
