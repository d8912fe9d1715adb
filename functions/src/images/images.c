/*
 * images.c: the example image pipeline plugin for fnhost (C, libpng's simplified API).
 *
 *     cc -O2 -Wall -Werror -shared -fPIC $(fnhost cflags) -o functions/libimages.so images.c -lpng
 *
 * Three tasks that a Celery producer chains, each passing a file path to the next:
 *
 *     chain(resize.s("/data/in/cat.png", 256), watermark.s(), store.s("/data/out")).apply_async()
 *
 *   images.resize(path, width=256)  ->  "<dir>/<name>.resized.png"  (height keeps the aspect ratio)
 *   images.watermark(path)          ->  "<dir>/<name>.wm.png"       (a translucent striped corner)
 *   images.store(path, dir)         ->  {"path": "<dir>/<name>.png", "width": w, "height": h, "bytes": n}
 *
 * Images travel by path, not by value: messages stay small (Redis and RabbitMQ both cap them),
 * and every worker process of every host must see the same files (a shared volume).
 */
#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fnhost.h"

static const fnhost_api *api;

/* ---------------------------------------------------------------------------------------- */
/* Arguments: a JSON array of a string and optional further strings or integers.             */

typedef struct {
    char text[4096]; /* a string argument, decoded (no NUL inside) */
    long long number;
    int is_string, is_number, is_null;
} arg;

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* Reads a JSON string (escapes \" \\ \/ \b \f \n \r \t and \u00XX) into out. */
static const char *read_string(const char *p, const char *end, arg *out) {
    size_t n = 0;
    if (p >= end || *p != '"') return NULL;
    for (p++; p < end && *p != '"'; p++) {
        char c = *p;
        if (c == '\\') {
            if (++p >= end) return NULL;
            switch (*p) {
            case '"': case '\\': case '/': c = *p; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u': {
                if (end - p < 5 || p[1] != '0' || p[2] != '0') return NULL; /* only \u00XX */
                char hex[3] = {p[3], p[4], 0};
                c = (char)strtol(hex, NULL, 16);
                if (c == 0) return NULL;
                p += 4;
                break;
            }
            default: return NULL;
            }
        }
        if (n + 1 >= sizeof out->text) return NULL;
        out->text[n++] = c;
    }
    if (p >= end) return NULL;
    out->text[n] = '\0';
    out->is_string = 1;
    return p + 1;
}

/* Parses the call's args into at most `max` args; returns how many, or -1 (TypeError set). */
static int parse_args(fnhost_call *call, arg *args, int max, const char *usage) {
    size_t len;
    const char *json = api->args_json(call, &len), *p = json, *end = json + len;
    int n = 0;
    memset(args, 0, sizeof(arg) * (size_t)max);
    p = skip_ws(p, end);
    if (p >= end || *p != '[') goto bad;
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']') return 0;
    for (;;) {
        if (n >= max) goto bad;
        arg *a = &args[n];
        if (p < end && *p == '"') {
            if (!(p = read_string(p, end, a))) goto bad;
        } else if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
            a->is_null = 1;
            p += 4;
        } else {
            char *stop;
            errno = 0;
            a->number = strtoll(p, &stop, 10);
            if (stop == p || errno == ERANGE || (stop < end && (*stop == '.' || *stop == 'e' || *stop == 'E'))) goto bad;
            a->is_number = 1;
            p = stop;
        }
        n++;
        p = skip_ws(p, end);
        if (p < end && *p == ',') { p = skip_ws(p + 1, end); continue; }
        if (p < end && *p == ']' && skip_ws(p + 1, end) == end) return n;
        goto bad;
    }
bad:;
    char msg[256];
    snprintf(msg, sizeof msg, "%s, got %.*s%s", usage, len > 100 ? 100 : (int)len, json, len > 100 ? "..." : "");
    api->set_error(call, "TypeError", msg);
    return -1;
}

/* Sets a JSON string result. */
static void set_string_result(fnhost_call *call, const char *s) {
    size_t cap = strlen(s) * 6 + 3, n = 0;
    char *out = malloc(cap);
    if (!out) { api->set_error(call, "MemoryError", "out of memory"); return; }
    out[n++] = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') { out[n++] = '\\'; out[n++] = (char)*c; }
        else if (*c < 0x20) n += (size_t)sprintf(out + n, "\\u%04x", *c);
        else out[n++] = (char)*c;
    }
    out[n++] = '"';
    api->set_result_json(call, out, n);
    free(out);
}

/* "<dir>/<stem><suffix>" for input "<dir>/<stem>.png" (any extension is replaced). */
static int derived_path(char *out, size_t cap, const char *path, const char *suffix) {
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    size_t stem = (dot && (!slash || dot > slash)) ? (size_t)(dot - path) : strlen(path);
    return snprintf(out, cap, "%.*s%s", (int)stem, path, suffix) < (int)cap ? 0 : -1;
}

/* ---------------------------------------------------------------------------------------- */
/* PNG in and out, as 8-bit RGBA.                                                             */

typedef struct {
    png_uint_32 width, height;
    png_bytep pixels; /* width * height * 4 */
} rgba;

static int load(fnhost_call *call, const char *path, rgba *img) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    struct stat st;
    if (stat(path, &st) != 0) {
        char msg[4200];
        snprintf(msg, sizeof msg, "%s: %s", path, strerror(errno));
        api->set_error(call, errno == ENOENT ? "FileNotFoundError" : "OSError", msg);
        return -1;
    }
    if (!png_image_begin_read_from_file(&image, path)) {
        char msg[4200];
        snprintf(msg, sizeof msg, "%s is not a PNG image libpng can read: %s", path, image.message);
        api->set_error(call, "ValueError", msg);
        return -1;
    }
    image.format = PNG_FORMAT_RGBA;
    img->width = image.width;
    img->height = image.height;
    img->pixels = malloc(PNG_IMAGE_SIZE(image));
    if (!img->pixels) {
        png_image_free(&image);
        api->set_error(call, "MemoryError", "out of memory for the image");
        return -1;
    }
    if (!png_image_finish_read(&image, NULL, img->pixels, 0, NULL)) {
        char msg[4200];
        snprintf(msg, sizeof msg, "%s: %s", path, image.message);
        free(img->pixels);
        api->set_error(call, "ValueError", msg);
        return -1;
    }
    return 0;
}

static int save(fnhost_call *call, const char *path, const rgba *img) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = img->width;
    image.height = img->height;
    image.format = PNG_FORMAT_RGBA;
    /* Write to a temporary name, then rename: a reader never sees half a file. */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (!png_image_write_to_file(&image, tmp, 0, img->pixels, 0, NULL) || rename(tmp, path) != 0) {
        char msg[4400];
        snprintf(msg, sizeof msg, "cannot write %s: %s", path, image.message[0] ? image.message : strerror(errno));
        remove(tmp);
        api->set_error(call, "OSError", msg);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The tasks.                                                                                 */

/* images.resize(path, width=256): area-averaged to `width` pixels wide, aspect ratio kept. */
static fnhost_status images_resize(fnhost_call *call, void *userdata) {
    (void)userdata;
    arg a[2];
    int n = parse_args(call, a, 2, "images.resize() takes a PNG path and an optional width, e.g. [\"/data/cat.png\", 256]");
    if (n < 0) return FNHOST_ERROR;
    if (n < 1 || !a[0].is_string || (n == 2 && !a[1].is_number && !a[1].is_null)) {
        api->set_error(call, "TypeError", "images.resize() takes a PNG path and an optional width, e.g. [\"/data/cat.png\", 256]");
        return FNHOST_ERROR;
    }
    long long width = (n == 2 && a[1].is_number) ? a[1].number : 256;
    if (width < 1 || width > 16384) {
        api->set_error(call, "ValueError", "images.resize(): width must be from 1 to 16384");
        return FNHOST_ERROR;
    }
    rgba src;
    if (load(call, a[0].text, &src) != 0) return FNHOST_ERROR;
    rgba dst = {(png_uint_32)width, 0, NULL};
    dst.height = (png_uint_32)((double)src.height * (double)width / (double)src.width + 0.5);
    if (dst.height < 1) dst.height = 1;
    dst.pixels = malloc((size_t)dst.width * dst.height * 4);
    if (!dst.pixels) {
        free(src.pixels);
        api->set_error(call, "MemoryError", "out of memory for the resized image");
        return FNHOST_ERROR;
    }
    for (png_uint_32 y = 0; y < dst.height; y++) {
        png_uint_32 y0 = (png_uint_32)((unsigned long long)y * src.height / dst.height);
        png_uint_32 y1 = (png_uint_32)((unsigned long long)(y + 1) * src.height / dst.height);
        if (y1 <= y0) y1 = y0 + 1;
        for (png_uint_32 x = 0; x < dst.width; x++) {
            png_uint_32 x0 = (png_uint_32)((unsigned long long)x * src.width / dst.width);
            png_uint_32 x1 = (png_uint_32)((unsigned long long)(x + 1) * src.width / dst.width);
            if (x1 <= x0) x1 = x0 + 1;
            unsigned long long sum[4] = {0, 0, 0, 0}, count = 0;
            for (png_uint_32 sy = y0; sy < y1 && sy < src.height; sy++)
                for (png_uint_32 sx = x0; sx < x1 && sx < src.width; sx++, count++)
                    for (int c = 0; c < 4; c++) sum[c] += src.pixels[((size_t)sy * src.width + sx) * 4 + c];
            for (int c = 0; c < 4; c++)
                dst.pixels[((size_t)y * dst.width + x) * 4 + c] = (png_byte)((sum[c] + count / 2) / count);
        }
    }
    free(src.pixels);
    char out[4200];
    fnhost_status status = FNHOST_ERROR;
    if (derived_path(out, sizeof out, a[0].text, ".resized.png") != 0)
        api->set_error(call, "ValueError", "images.resize(): path too long");
    else if (save(call, out, &dst) == 0) {
        set_string_result(call, out);
        status = FNHOST_OK;
    }
    free(dst.pixels);
    return status;
}

/* images.watermark(path): white diagonal stripes, 50% opaque, over the bottom-right quarter. */
static fnhost_status images_watermark(fnhost_call *call, void *userdata) {
    (void)userdata;
    arg a[1];
    int n = parse_args(call, a, 1, "images.watermark() takes a PNG path, e.g. [\"/data/cat.resized.png\"]");
    if (n < 0) return FNHOST_ERROR;
    if (n != 1 || !a[0].is_string) {
        api->set_error(call, "TypeError", "images.watermark() takes a PNG path, e.g. [\"/data/cat.resized.png\"]");
        return FNHOST_ERROR;
    }
    rgba img;
    if (load(call, a[0].text, &img) != 0) return FNHOST_ERROR;
    for (png_uint_32 y = img.height / 2; y < img.height; y++)
        for (png_uint_32 x = img.width / 2; x < img.width; x++) {
            if (((x + y) / 4) % 2 != 0) continue;
            png_bytep px = img.pixels + ((size_t)y * img.width + x) * 4;
            for (int c = 0; c < 3; c++) px[c] = (png_byte)((px[c] + 255 + 1) / 2);
            px[3] = px[3] > 128 ? px[3] : 128;
        }
    char out[4200];
    fnhost_status status = FNHOST_ERROR;
    if (derived_path(out, sizeof out, a[0].text, ".wm.png") != 0)
        api->set_error(call, "ValueError", "images.watermark(): path too long");
    else if (save(call, out, &img) == 0) {
        set_string_result(call, out);
        status = FNHOST_OK;
    }
    free(img.pixels);
    return status;
}

/* images.store(path, dir): copies the image into `dir` (created if missing) as <name>.png. */
static fnhost_status images_store(fnhost_call *call, void *userdata) {
    (void)userdata;
    arg a[2];
    const char *usage = "images.store() takes a PNG path and a directory, e.g. [\"/data/cat.wm.png\", \"/data/out\"]";
    int n = parse_args(call, a, 2, usage);
    if (n < 0) return FNHOST_ERROR;
    if (n != 2 || !a[0].is_string || !a[1].is_string || a[1].text[0] == '\0') {
        api->set_error(call, "TypeError", usage);
        return FNHOST_ERROR;
    }
    rgba img;
    if (load(call, a[0].text, &img) != 0) return FNHOST_ERROR; /* also checks it is a PNG */
    if (mkdir(a[1].text, 0755) != 0 && errno != EEXIST) {
        char msg[4200];
        snprintf(msg, sizeof msg, "cannot create %s: %s", a[1].text, strerror(errno));
        free(img.pixels);
        api->set_error(call, "OSError", msg);
        return FNHOST_ERROR;
    }
    /* <dir>/<first part of the file name>.png: cat.resized.wm.png is stored as cat.png. */
    const char *base = strrchr(a[0].text, '/');
    base = base ? base + 1 : a[0].text;
    size_t stem = strcspn(base, ".");
    char out[8400];
    snprintf(out, sizeof out, "%s/%.*s.png", a[1].text, (int)(stem ? stem : strlen(base)), base);
    fnhost_status status = FNHOST_ERROR;
    if (save(call, out, &img) == 0) {
        struct stat st;
        long long bytes = stat(out, &st) == 0 ? (long long)st.st_size : -1;
        size_t cap = strlen(out) * 6 + 128, m = 0;
        char *json = malloc(cap);
        if (json) {
            m += (size_t)snprintf(json, cap, "{\"path\": \"");
            for (const unsigned char *c = (const unsigned char *)out; *c; c++) {
                if (*c == '"' || *c == '\\') { json[m++] = '\\'; json[m++] = (char)*c; }
                else if (*c < 0x20) m += (size_t)sprintf(json + m, "\\u%04x", *c);
                else json[m++] = (char)*c;
            }
            m += (size_t)snprintf(json + m, cap - m, "\", \"width\": %u, \"height\": %u, \"bytes\": %lld}",
                                  (unsigned)img.width, (unsigned)img.height, bytes);
            api->set_result_json(call, json, m);
            free(json);
            status = FNHOST_OK;
        } else {
            api->set_error(call, "MemoryError", "out of memory");
        }
    }
    free(img.pixels);
    return status;
}

int fnhost_plugin_init(const fnhost_api *host, fnhost_registry *registry) {
    if (host == NULL || host->abi_version < FNHOST_ABI_VERSION || host->struct_size < sizeof(fnhost_api))
        return 1;
    api = host;
    if (api->register_task(registry, "images.resize", images_resize, NULL, NULL) != 0 ||
        api->register_task(registry, "images.watermark", images_watermark, NULL, NULL) != 0 ||
        api->register_task(registry, "images.store", images_store, NULL, NULL) != 0) {
        api->set_init_error(registry, "images: a task registration was refused (see the host's log)");
        return 1;
    }
    return 0;
}

void fnhost_plugin_fini(void) {}
