/*
 * semantic_genesis.transforms._native: CPU kernels for the perturbations (warp.c, pointwise.c),
 * reached through ctypes from native.py. The module itself is empty: it exists so that
 * setuptools builds these files like any extension, and native.py finds the library by its
 * module name.
 */
#include <Python.h>
#include "simd.h"

/* The version of the kernels' arguments and results, checked by native.py before it uses this
 * library (an old build left in place must not be called with new arguments). 2: sg_uniform
 * takes an offset and computes the counter-based stream (pointwise.c). */
int sg_abi(void) { return 2; }

int sg_simd(void) {
#ifdef SG_AVX2
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static struct PyModuleDef sg_native_module = {
    PyModuleDef_HEAD_INIT, "_native", "CPU kernels for the perturbations (see native.py).", -1,
    NULL};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&sg_native_module); }
