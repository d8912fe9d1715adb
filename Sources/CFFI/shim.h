#pragma once
#include <ffi.h>

/* Swift 6 rejects C globals as shared mutable state: reach libffi's type descriptors here. */
static inline ffi_type *fnhost_ffi_type_void(void) { return &ffi_type_void; }
static inline ffi_type *fnhost_ffi_type_uint8(void) { return &ffi_type_uint8; }
static inline ffi_type *fnhost_ffi_type_sint32(void) { return &ffi_type_sint32; }
static inline ffi_type *fnhost_ffi_type_uint32(void) { return &ffi_type_uint32; }
static inline ffi_type *fnhost_ffi_type_sint64(void) { return &ffi_type_sint64; }
static inline ffi_type *fnhost_ffi_type_uint64(void) { return &ffi_type_uint64; }
static inline ffi_type *fnhost_ffi_type_float(void) { return &ffi_type_float; }
static inline ffi_type *fnhost_ffi_type_double(void) { return &ffi_type_double; }
static inline ffi_type *fnhost_ffi_type_pointer(void) { return &ffi_type_pointer; }
