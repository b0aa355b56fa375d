/* layer_args.c - the tables generated from layers.def and layer_args.h: each
 * layer's name, signature (the ArgSpecs bind.c binds a call against) and
 * flags, and the accessors of a node's bound arguments. */
#include <stdio.h>
#include <string.h>

#include "layer_args.h"

/* Each signature's ArgSpecs, and a check that its struct overlays them. */
#define ARG_SPEC(name, type, def, choices) {#name, type, def, choices},
#define SIGNATURE_SPECS(Sig)                                                         \
    static const ArgSpec Sig##_specs[] = {Sig##_LIST(ARG_SPEC)};                      \
    _Static_assert(sizeof(Sig) == sizeof Sig##_specs / sizeof(ArgSpec) * sizeof(BoundArg), \
                   #Sig " does not overlay its bound arguments");
SIGNATURES(SIGNATURE_SPECS)
#undef SIGNATURE_SPECS
#undef ARG_SPEC

typedef struct LayerRow {
    const char *name;
    SignatureId sig;
    unsigned flags;
} LayerRow;

static const LayerRow layer_rows[] = {
#define LAYER(E, Name, Sig, rule, kernel, reference, flags) [OP_##E] = {#Name, SIG_##Sig, flags},
#include "layers.def"
#undef LAYER
    [OP_INPUT] = {"input", SIG_NoArgs, 0},
};
_Static_assert(sizeof layer_rows / sizeof layer_rows[0] == OP_COUNT, "layer_rows out of step with layers.def");

static const LayerSignature signatures[SIG_COUNT] = {
#define SIGNATURE(Sig) [SIG_##Sig] = {Sig##_specs, (int)(sizeof Sig##_specs / sizeof(ArgSpec)), false, NULL},
    SIGNATURES(SIGNATURE)
#undef SIGNATURE
};

/* Identity(*args, **kwargs): NoArgs, accepting anything. */
static const LayerSignature any_arguments = {NULL, 0, true, NULL};

const char *op_name(OpKind op) { return op < OP_COUNT ? layer_rows[op].name : "?"; }

unsigned op_flags(OpKind op) { return op < OP_COUNT ? layer_rows[op].flags : 0; }

const LayerSignature *op_signature(OpKind op)
{
    return op_flags(op) & LF_ANY_ARGS ? &any_arguments : &signatures[layer_rows[op].sig];
}

OpKind op_lookup(const char *name)
{
    for (int op = 0; op < OP_INPUT; op++)
        if (strcmp(layer_rows[op].name, name) == 0) return (OpKind)op;
    return OP_COUNT;
}

int op_all_names(const char **names, int max)
{
    int n = 0;
    for (int op = 0; op < OP_INPUT && n < max; op++)
        if (!(layer_rows[op].flags & LF_FUNCTIONAL)) names[n++] = layer_rows[op].name;
    return n;
}

const BoundArg *node_args_of(const Node *n, SignatureId sig)
{
    if (layer_rows[n->op].sig != sig) LAYERC_UNREACHABLE("a layer's arguments read through another layer's signature");
    return n->args;
}

const char *node_arg_name(const Node *n, const BoundArg *a)
{
    const LayerSignature *sig = op_signature(n->op);
    ptrdiff_t i = a - n->args;
    if (i < 0 || i >= sig->nargs) LAYERC_UNREACHABLE("an argument that is not the node's");
    return sig->args[i].name;
}

const Param *node_param(const Node *n, const char *suffix)
{
    size_t prefix = strlen(n->name);
    for (int i = 0; i < n->nparams; i++) {
        const char *key = n->params[i].key;
        if (strncmp(key, n->name, prefix) == 0 && key[prefix] == '.' && strcmp(key + prefix + 1, suffix) == 0)
            return &n->params[i];
    }
    return NULL;
}
