/* NeuroMask's presets and the "key=value,..." option parser. */
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "neuromask.h"

/* This project's default (docs/neuromask_default.md): a smooth mask (a
 * coarse grid interpolated by a Gaussian) from w = 0 that must keep the
 * class on a strong blur (sigma 10 px, a fill no deletion / insertion
 * protocol uses) and lose it when its pixels are blurred, under a sparsity
 * pull on m; 40 normalized gradient steps; the mean of the steps' masks,
 * raised (calibrate) until the masked image keeps the class. 80 image passes and at most 13
 * forward-only ones. */
static void default_preset(nm_neuromask_options *o)
{
    o->kernel = 3;
    o->init = NM_INIT_ZERO;
    o->grid = NM_GRID_AUTO;
    o->temperature = 1.f;
    o->optimizer = NM_OPT_NORMALIZED;
    o->lr = 0.5f;
    o->steps = 40;
    o->l_pred = 1.f;
    o->l_delete = 1.f;
    o->l_smooth = 0.f;
    o->sparsity = NM_SPARSITY_MASK;
    o->l_sparse = 3.f;
    o->baseline = NM_BASELINE_BLUR;
    o->blur_sigma = 10.f;
    o->average = 1;
    o->calibrate = 1;
}

int nm_neuromask_grid(const nm_neuromask_options *o, int h, int w)
{
    int side = h < w ? h : w;
    if (o->grid == NM_GRID_AUTO) {
        int g = side / 16 < 8 ? 8 : (side / 16 > 14 ? 14 : side / 16);
        return g < side ? g : side;
    }
    return o->grid > 0 && o->grid < side ? o->grid : (o->grid > 0 ? side : 0);
}

/* "default" at every size (docs/neuromask_default.md). Kept as a function
 * of the input height so a size-specific setting can come back without
 * changing callers. */
const char *nm_neuromask_preset_for(int input_h)
{
    (void)input_h;
    return "default";
}

nm_status nm_neuromask_preset(const char *name, nm_neuromask_options *o, nm_error *err)
{
    memset(o, 0, sizeof *o);
    o->target_class = -1;
    o->init_range = 10.f;
    o->optimizer = NM_OPT_RMSPROP;
    o->lr = 0.03f;
    o->steps = 2000;
    o->tol = 1e-3f;
    o->window = 50;
    o->baseline = NM_BASELINE_BLACK;
    o->blur_sigma = 5.f;
    o->l_pred = 0.4f;
    o->l_sparse = 0.35f;
    if (strcmp(name, "cifar") == 0) {
        o->l_smooth = 0.15f;
        o->temperature = 1.f;
        o->kernel = 3;
    } else if (strcmp(name, "imagenet") == 0) {
        o->l_smooth = 0.03f;
        o->temperature = 0.3f;
        o->kernel = 5;
    } else if (strcmp(name, "default") == 0) {
        default_preset(o);
    } else {
        return nm_fail(err, NM_ERR_ARG, "unknown NeuroMask preset '%s' (default, cifar, imagenet)", name);
    }
    return NM_OK;
}

/* ------------------------------------------------------------ option spec */

static int pick_name(const char *v, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v, names[i])) return i;
    return -1;
}

#define NM_OFF(field) offsetof(nm_neuromask_options, field)
/* Keys of nm_neuromask_parse: f float, i int, o optimizer, b baseline,
 * n init, s sparsity. */
static const struct option_key {
    const char *name;
    char kind;
    size_t off;
} option_keys[] = {
    {"steps", 'i', NM_OFF(steps)}, {"lr", 'f', NM_OFF(lr)}, {"l_pred", 'f', NM_OFF(l_pred)},
    {"l_sparse", 'f', NM_OFF(l_sparse)}, {"l_smooth", 'f', NM_OFF(l_smooth)},
    {"temperature", 'f', NM_OFF(temperature)}, {"T", 'f', NM_OFF(temperature)},
    {"init_range", 'f', NM_OFF(init_range)}, {"L", 'f', NM_OFF(init_range)}, {"kernel", 'i', NM_OFF(kernel)},
    {"optimizer", 'o', NM_OFF(optimizer)}, {"tol", 'f', NM_OFF(tol)}, {"window", 'i', NM_OFF(window)},
    {"early_stop", 'i', NM_OFF(early_stop)}, {"baseline", 'b', NM_OFF(baseline)},
    {"blur_sigma", 'f', NM_OFF(blur_sigma)}, {"grid", 'i', NM_OFF(grid)}, {"init", 'n', NM_OFF(init)},
    {"sparsity", 's', NM_OFF(sparsity)}, {"l_delete", 'f', NM_OFF(l_delete)}, {"alt_fill", 'i', NM_OFF(alt_fill)},
    {"alt_baseline", 'b', NM_OFF(alt_baseline)}, {"average", 'i', NM_OFF(average)},
    {"calibrate", 'i', NM_OFF(calibrate)},
};
#undef NM_OFF

static int set_value(nm_neuromask_options *o, const struct option_key *k, const char *v)
{
    static const char *const optimizers[] = {"rmsprop", "adam", "normalized"}, *const baselines[] = {"black", "blur", "mean", "noise"};
    static const char *const inits[] = {"uniform", "zero"}, *const sparsities[] = {"logit", "mask"};
    char *field = (char *)o + k->off, *end = NULL;
    double d = strtod(v, &end);
    int numeric = end != v && *end == '\0', pick;
    switch (k->kind) {
    case 'f': return numeric ? (*(float *)field = (float)d, 1) : 0;
    case 'i': return numeric && d >= INT_MIN && d <= INT_MAX && d == (int)d ? (*(int *)field = (int)d, 1) : 0;
    case 'o': return (pick = pick_name(v, optimizers, 3)) >= 0 ? (*(nm_optimizer *)field = (nm_optimizer)pick, 1) : 0;
    case 'b': return (pick = pick_name(v, baselines, 4)) >= 0 ? (*(nm_baseline *)field = (nm_baseline)pick, 1) : 0;
    case 'n': return (pick = pick_name(v, inits, 2)) >= 0 ? (*(nm_mask_init *)field = (nm_mask_init)pick, 1) : 0;
    default: return (pick = pick_name(v, sparsities, 2)) >= 0 ? (*(nm_sparsity *)field = (nm_sparsity)pick, 1) : 0;
    }
}

static nm_status set_option(nm_neuromask_options *o, const char *key, const char *v, nm_error *err)
{
    if (!strcmp(key, "preset")) return nm_neuromask_preset(v, o, err);
    for (size_t i = 0; i < sizeof option_keys / sizeof option_keys[0]; i++)
        if (!strcmp(key, option_keys[i].name))
            return set_value(o, &option_keys[i], v) ? NM_OK
                                                    : nm_fail(err, NM_ERR_ARG, "NeuroMask option %s: bad value '%s'", key, v);
    return nm_fail(err, NM_ERR_ARG, "unknown NeuroMask option '%s'", key);
}

nm_status nm_neuromask_parse(const char *spec, nm_neuromask_options *o, nm_error *err)
{
    char item[128];
    for (const char *s = spec; s && *s;) {
        size_t n = strcspn(s, ",");
        if (n >= sizeof item) return nm_fail(err, NM_ERR_ARG, "NeuroMask option item too long in '%s'", spec);
        memcpy(item, s, n);
        item[n] = '\0';
        s += n + (s[n] == ',');
        char *eq = strchr(item, '=');
        if (!eq) return nm_fail(err, NM_ERR_ARG, "NeuroMask option '%s' is not key=value", item);
        *eq = '\0';
        nm_status st = set_option(o, item, eq + 1, err);
        if (st) return st;
    }
    return NM_OK;
}
