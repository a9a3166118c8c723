/* Deletion / insertion under several fills, each distinct half computed
 * once. */
#include "eval/protocols.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static const char *const names[NM_PROTOCOL_COUNT] = {"rise", "black", "blur", "grey", "mean"};

const char *nm_protocol_name(nm_protocol p)
{
    return (unsigned)p < NM_PROTOCOL_COUNT ? names[p] : "?";
}

unsigned nm_protocols_parse(const char *list, char *bad, size_t bad_size)
{
    unsigned set = 0;
    if (bad_size) bad[0] = '\0';
    if (!strcmp(list, "all")) return (1u << NM_PROTOCOL_COUNT) - 1;
    for (const char *t = list; *t;) {
        size_t len = strcspn(t, ",");
        int found = -1;
        for (int p = 0; p < NM_PROTOCOL_COUNT; p++)
            if (len == strlen(names[p]) && !strncmp(t, names[p], len)) found = p;
        if (found < 0) {
            if (bad_size) snprintf(bad, bad_size, "%.*s", (int)len, t);
            return 0;
        }
        set |= 1u << found;
        t += len + (t[len] == ',');
    }
    return set;
}

/* The fill of each protocol's deletion and of its insertion's start. */
static void fills_of(nm_protocol p, const nm_auc_options *auc, nm_auc_fill *del, nm_auc_fill *ins)
{
    static const nm_auc_fill fill[NM_PROTOCOL_COUNT] = {NM_AUC_FILL_BLACK, NM_AUC_FILL_BLACK, NM_AUC_FILL_BLUR,
                                                        NM_AUC_FILL_GREY, NM_AUC_FILL_IMAGE_MEAN};
    *del = p == NM_PROTOCOL_RISE ? auc->deletion_fill : fill[p];
    *ins = p == NM_PROTOCOL_RISE ? NM_AUC_FILL_BLUR : fill[p];
}

nm_status nm_eval_protocols(nm_model *m, const nm_preprocess *pp, const float *x, const float *map, int target,
                            const nm_auc_options *auc, unsigned set, double *deletion, double *insertion,
                            float *const *deletion_curves, float *const *insertion_curves, nm_error *err)
{
    for (int p = 0; p < NM_PROTOCOL_COUNT; p++) deletion[p] = insertion[p] = NAN;
    nm_status s = NM_OK;
    /* One call per fill, computing the halves that some protocol of the set needs. */
    for (int f = NM_AUC_FILL_BLACK; !s && f <= NM_AUC_FILL_IMAGE_MEAN; f++) {
        int del_first = -1, ins_first = -1;   /* the first protocol using this fill for each half */
        for (int p = 0; p < NM_PROTOCOL_COUNT; p++) {
            nm_auc_fill d, i;
            fills_of((nm_protocol)p, auc, &d, &i);
            if (!(set >> p & 1)) continue;
            if ((int)d == f && del_first < 0) del_first = p;
            if ((int)i == f && ins_first < 0) ins_first = p;
        }
        if (del_first < 0 && ins_first < 0) continue;
        nm_auc_options o = *auc;
        o.deletion_fill = o.insertion_fill = (nm_auc_fill)f;
        s = nm_deletion_insertion(m, pp, x, map, target, &o, del_first < 0 ? NULL : &deletion[del_first],
                                  ins_first < 0 ? NULL : &insertion[ins_first],
                                  del_first < 0 || !deletion_curves ? NULL : deletion_curves[del_first],
                                  ins_first < 0 || !insertion_curves ? NULL : insertion_curves[ins_first], err);
        for (int p = 0; !s && p < NM_PROTOCOL_COUNT; p++) {   /* the other protocols sharing a half */
            nm_auc_fill d, i;
            fills_of((nm_protocol)p, auc, &d, &i);
            if (!(set >> p & 1)) continue;
            size_t curve = sizeof(float) * (size_t)(auc->steps + 1);
            if ((int)d == f && p != del_first) {
                deletion[p] = deletion[del_first];
                if (deletion_curves) memcpy(deletion_curves[p], deletion_curves[del_first], curve);
            }
            if ((int)i == f && p != ins_first) {
                insertion[p] = insertion[ins_first];
                if (insertion_curves) memcpy(insertion_curves[p], insertion_curves[ins_first], curve);
            }
        }
    }
    return s;
}
